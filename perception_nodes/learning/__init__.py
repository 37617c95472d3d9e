"""Training and ONNX export (torch). Imports core for every pre/post-processing step."""
