"""The maths: number tracks, layer kinds, losses and the network passes. Knows nothing of configs or printing."""
