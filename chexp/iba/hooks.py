"""The context managers with which IBA touches a model temporarily (forward hooks and patched
``forward`` methods).

Everything here restores the model on exit, also when an exception is raised: hooks are
removed and patched ``forward`` attributes deleted. Finding layers by name and eval mode live in
:mod:`chexp.models.modules`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ..errors import BottleneckLayerError


@contextmanager
def replace_output(layer: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """While active, the output ``y`` of ``layer`` is replaced by ``fn(y)`` (a forward hook)."""

    def hook(module: nn.Module, args: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise BottleneckLayerError(
                f"the bottleneck layer must output a 4-D feature map (N, C, h, w), got "
                f"{type(output).__name__} {tuple(getattr(output, 'shape', ()))}"
            )
        return fn(output)

    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class _StopForward(Exception):
    """Raised inside a hook to end a forward pass early."""


@contextmanager
def capture_outputs(
    layers: dict[str, nn.Module], store: dict[str, torch.Tensor]
) -> Iterator[Callable[[Callable[[], Any]], None]]:
    """Record the outputs of ``layers`` into ``store``; the forward stops once all are recorded.

    Yields a function ``run(call)`` that evaluates ``call()`` (a model forward) and swallows the
    early stop.
    """
    handles = []

    def make(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor) or output.dim() != 4:
                raise BottleneckLayerError(
                    f"layer {name!r} must output a 4-D feature map (N, C, h, w), got "
                    f"{type(output).__name__} {tuple(getattr(output, 'shape', ()))}"
                )
            store[name] = output.detach()
            if len(store) == len(layers):
                raise _StopForward

        return hook

    for name, layer in layers.items():
        handles.append(layer.register_forward_hook(make(name)))

    def run(call: Callable[[], Any]) -> None:
        store.clear()
        try:
            call()
        except _StopForward:
            pass
        missing = [n for n in layers if n not in store]
        if missing:
            raise BottleneckLayerError(f"layers {missing} were not run by the model's forward pass")

    try:
        yield run
    finally:
        for h in handles:
            h.remove()


# --- computing the part in front of the bottleneck once ------------------------------------------


class FrontCache:
    """The outputs of every module that finishes before ``layer`` starts, and ``layer``'s output.

    Recorded during one clean forward pass (:meth:`record`). :meth:`replay` then patches those
    modules (and ``layer``) to return their recorded outputs instead of computing, so a forward
    pass runs only the part of the network behind the bottleneck. Only *maximal* modules are
    kept (a module whose caller is still running when ``layer`` starts); their children never
    run during replay.

    The recorded outputs keep the batch size of the clean pass; the tensors reaching the rest of
    the network through ``layer`` are expanded by the caller. A model whose back part reads an
    earlier output directly (a skip connection across the bottleneck) would see the unexpanded
    tensor: :meth:`replay` is therefore verified against a normal forward pass by the caller.
    """

    def __init__(self, model: nn.Module, layer: nn.Module) -> None:
        self.model = model
        self.layer = layer
        self.front: list[tuple[nn.Module, Any]] = []
        self.layer_output: torch.Tensor | None = None
        self.replayable = True
        self.reason = ""

    @contextmanager
    def record(self) -> Iterator[None]:
        """Record during the forward passes run inside this context (run exactly one)."""
        recording = _Recording(self)
        handles = []
        for m in self.model.modules():
            handles.append(m.register_forward_pre_hook(recording.pre))
            handles.append(m.register_forward_hook(recording.post))
        try:
            yield
        finally:
            for h in handles:
                h.remove()
        recording.check_layer_ran_once()

    @contextmanager
    def replay(self, layer_output: torch.Tensor) -> Iterator[None]:
        """Front modules return their recorded outputs; ``layer`` returns ``layer_output``."""
        patched: list[tuple[nn.Module, Any]] = []
        outputs: dict[int, list[Any]] = {}
        modules: dict[int, nn.Module] = {}
        for m, out in self.front:
            outputs.setdefault(id(m), []).append(out)
            modules[id(m)] = m

        def make(key: int) -> Callable[..., Any]:
            seq = outputs[key]
            calls = [0]

            def forward(*args: Any, **kwargs: Any) -> Any:
                out = seq[calls[0] % len(seq)]
                calls[0] += 1
                return out

            return forward

        try:
            for key, m in modules.items():
                patched.append((m, m.__dict__.get("forward")))
                m.forward = make(key)  # type: ignore[method-assign]
            patched.append((self.layer, self.layer.__dict__.get("forward")))
            self.layer.forward = lambda *a, **k: layer_output  # type: ignore[method-assign]
            yield
        finally:
            for m, previous in patched:
                if previous is None:
                    m.__dict__.pop("forward", None)
                else:
                    m.forward = previous  # type: ignore[method-assign]


class _Recording:
    """The state of one :meth:`FrontCache.record`: the stack of running module calls and, per
    running caller, its finished child calls; fills ``cache`` when its ``layer`` starts."""

    def __init__(self, cache: FrontCache) -> None:
        self.cache = cache
        self.stack: list[tuple[nn.Module, int]] = []
        self.children: dict[int | None, list[tuple[int, nn.Module, Any]]] = {}
        self.calls = 0
        self.started = False
        self.layer_calls = 0
        self.front_ids: set[int] = set()

    def pre(self, module: nn.Module, args: Any) -> None:
        """Forward pre-hook: a module call starts."""
        self.calls += 1
        call_id = self.calls
        if module is self.cache.layer:
            self.layer_calls += 1
            if self.layer_calls == 1:
                self._start_layer()
        elif self.started and id(module) in self.front_ids:
            self.cache.replayable = False
            self.cache.reason = f"module {type(module).__name__} runs both before and after the bottleneck"
        self.stack.append((module, call_id))

    def _start_layer(self) -> None:
        """The layer's first call: the finished calls of every running caller are the front."""
        active = {cid for _, cid in self.stack} | {None}
        records = [r for pid in active for r in self.children.get(pid, [])]
        records.sort(key=lambda r: r[0])
        self.cache.front = [(m, out) for _, m, out in records]
        self.front_ids = {id(m) for m, _ in self.cache.front}
        self.started = True

    def post(self, module: nn.Module, args: Any, output: Any) -> None:
        """Forward hook: a module call ends."""
        _, call_id = self.stack.pop()
        self.children.pop(call_id, None)  # nested records are not maximal
        if module is self.cache.layer:
            if self.layer_calls == 1:
                self.cache.layer_output = output
            return
        if not self.started:
            parent = self.stack[-1][1] if self.stack else None
            self.children.setdefault(parent, []).append((call_id, module, output))

    def check_layer_ran_once(self) -> None:
        if self.layer_calls == 0:
            raise BottleneckLayerError("the bottleneck layer was not run by the model's forward pass")
        if self.layer_calls > 1:
            raise BottleneckLayerError(
                f"the bottleneck layer runs {self.layer_calls} times in one forward pass; "
                "choose a layer that runs once"
            )
