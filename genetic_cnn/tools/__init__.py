"""tools: calibrate, tabulate, final training and the learning-rate range test, as Python functions.
Imports everything below the driver (and evolution, to start runs); never cli/."""
