"""fitness: how an evaluation task becomes a result (standalone training, one-shot supernet, table lookup).
Imports space/, search/ (records), nn/, data/, tables/, history/ (the store), config, errors and progress."""
