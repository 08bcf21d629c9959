"""Configuration: YAML files in, validated frozen specs out."""
