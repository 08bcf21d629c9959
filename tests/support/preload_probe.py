"""A module for the preload test to import (it has nothing in it)."""
