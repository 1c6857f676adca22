"""Model files and tools: formats and validation, inspection, compatibility checks, quantization, conversion."""
