"""What the tests and the benchmarks share: private servers (`servers`) and a GIL hog."""
