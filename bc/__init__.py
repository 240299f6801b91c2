"""Behaviour cloning: the scripted stand controller (baseline and demonstrator), later datasets and trainer."""
