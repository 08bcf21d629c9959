"""Model providers behind the ModelProvider seam."""
