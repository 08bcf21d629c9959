"""Configuration: YAML files in, validated frozen specs out."""

CONFIG_ENV = "IDEAMINE_CONFIG"  # the overlay folder when no --config is given
