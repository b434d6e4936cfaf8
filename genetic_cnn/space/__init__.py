"""space: genomes, their graphs, the network presets, the enumeration of a space and its cost.
Imports nothing of genetic_cnn outside space/ and errors; no torch."""
