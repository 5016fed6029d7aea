"""Device-to-host copies into reusable pinned buffers on a dedicated copy stream (CUDA), or none (CPU)."""

from __future__ import annotations

import queue
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Staged:
    """A tensor on its way to the host: `array` is valid once `wait()` returns."""

    tensor: torch.Tensor
    event: torch.cuda.Event | None
    slot: int | None

    def wait(self) -> np.ndarray:
        if self.event is not None:
            self.event.synchronize()
        return self.tensor.numpy()


class HostTransfer:
    """Copy device results to the host without stalling the forward pass.

    On CUDA, each result goes into one of `slots` pinned buffers through a separate copy stream, so
    the next batch computes while this one copies; a slot is reused only after `release`. On the CPU
    results already live on the host and pass straight through.
    """

    def __init__(self, device: torch.device, slot_bytes: int, slots: int = 4) -> None:
        self.cuda = device.type == "cuda"
        self.free: queue.Queue[int] = queue.Queue()
        self.buffers: list[torch.Tensor] = []
        if self.cuda:
            self.stream = torch.cuda.Stream(device)
            for i in range(slots):
                self.buffers.append(torch.empty(slot_bytes, dtype=torch.uint8, pin_memory=True))
                self.free.put(i)

    def send(self, x: torch.Tensor) -> Staged:
        """Start copying `x` to the host; blocks only when every pinned slot is still in use."""
        if not self.cuda:
            return Staged(x, None, None)
        slot = self.free.get()
        nbytes = x.numel() * x.element_size()
        if nbytes > self.buffers[slot].numel():
            self.buffers[slot] = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
        dst = self.buffers[slot][:nbytes].view(x.dtype).view(x.shape)
        self.stream.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(self.stream):
            dst.copy_(x, non_blocking=True)
            x.record_stream(self.stream)
            event = torch.cuda.Event()
            event.record(self.stream)
        return Staged(dst, event, slot)

    def release(self, staged: Staged) -> None:
        """Give a staged buffer's slot back once its contents have been consumed."""
        if staged.slot is not None:
            self.free.put(staged.slot)
