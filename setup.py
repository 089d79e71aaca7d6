"""Builds the native engine with cffi; everything else is in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["src/duplexio/_engine/build.py:ffibuilder"])
