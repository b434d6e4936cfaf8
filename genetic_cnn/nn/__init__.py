"""nn: the network built from a genome, the one training loop, devices, saved models.
Imports space/, data/, config, errors and progress; torch is imported by the modules, not here."""
