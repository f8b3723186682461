"""Standard addresses (标准地址)."""
