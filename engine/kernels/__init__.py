"""Custom compute kernels: numba.cuda for the GPU and numba (parallel) for the CPU, side by side."""
