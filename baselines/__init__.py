"""Baseline algorithms: one file per method (six adapted from osrl-lib, CAPS and CCAC our own)."""
