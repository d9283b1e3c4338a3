"""The node agent: runs in each emulated node, benchmarks in place and serves split inference."""
