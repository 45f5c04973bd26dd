"""lmms-eval's OpenAI-compatible model type (``openai_compatible``, lmms-eval 0.5.0), as the evaluate job uses it.

Three changes, none in how it builds requests:

- lmms-eval 0.5.0 returns the answers in the order it sent them (longest prompt first: its
  ``utils.Collator``), not in the order of the requests, so with prompts of different lengths answers
  are scored against other questions' gold answers (the CPU check caught it: tests/images/evaluate).
  Its other model types, and this one from lmms-eval 0.6 on, map them back with the Collator's
  ``get_original``; here the same Collator maps them back.

- lmms-eval 0.5.0 caps every request at 4,096 new tokens (``if gen_kwargs["max_new_tokens"] > 4096``
  in models/simple/openai_compatible.py); the recipe evaluates with up to 49,152. ``max_new_tokens``
  here (the run's ``evaluation.maxNewTokens``) replaces the capped ``max_tokens`` of each request.
- lmms-eval turns a request that failed every retry into an empty answer, which would score as a
  wrong one. Here such a request fails the benchmark instead (a retry of the job asks again).
"""

from __future__ import annotations

import threading

from lmms_eval import utils
from lmms_eval.models.simple.openai_compatible import OpenAICompatible


class _Completions:
    def __init__(self, inner, max_tokens: int | None, failed: set, lock: threading.Lock) -> None:
        self._inner = inner
        self._max_tokens = max_tokens
        self._failed = failed
        self._lock = lock

    def create(self, **payload):
        if self._max_tokens is not None and "max_tokens" in payload:
            payload["max_tokens"] = self._max_tokens
        key = repr(payload.get("messages"))[:4096]
        try:
            response = self._inner.create(**payload)
        except Exception:
            with self._lock:
                self._failed.add(key)
            raise
        with self._lock:
            self._failed.discard(key)
        return response


class _Chat:
    def __init__(self, completions: _Completions) -> None:
        self.completions = completions


class _Client:
    def __init__(self, inner, completions: _Completions) -> None:
        self._inner = inner
        self.chat = _Chat(completions)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class RecipeOpenAICompatible(OpenAICompatible):
    def __init__(self, max_new_tokens: int | None = None, request_timeout: float = 3600.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self._failed: set = set()
        # lmms-eval's `timeout` is the pause between retries; the HTTP timeout is the OpenAI client's
        # default, 600 s, less than one 49,152-token answer can take: each request gets request_timeout.
        self.client = self.client.with_options(timeout=float(request_timeout))
        completions = _Completions(
            self.client.chat.completions,
            int(max_new_tokens) if max_new_tokens is not None else None,
            self._failed,
            threading.Lock(),
        )
        self.client = _Client(self.client, completions)

    def generate_until(self, requests):
        # The order the parent sends them in: the same Collator over the same arguments and batch
        # size, built before the parent runs (it rewrites each request's generation arguments).
        order = utils.Collator([r.args for r in requests], lambda x: (-len(self.tok_encode(x[0])), x[0]), grouping=True)
        for _ in order.get_batched(n=self.batch_size, batch_fn=None):
            pass
        responses = super().generate_until(requests)
        if self._failed:
            raise RuntimeError(
                f"{len(self._failed)} request(s) to the served model failed every retry: not scoring them as wrong answers"
            )
        if len(responses) != len(requests):
            raise RuntimeError(f"{len(responses)} answers for {len(requests)} requests")
        return order.get_original(responses)
