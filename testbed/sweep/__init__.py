"""Sweeps: grids or lists of points over a simulation or an emulated run, resumable, local or on Dask."""
