"""Transformers-free Haystack components on ONNX Runtime: the question/document embedder and the extractive reader.

Why not the stock components on an ONNX model: loading transformers and sentence-transformers costs
seconds of start-up and hundreds of MB of memory, more than the models themselves (Haystack itself imports
torch when it is installed, so torch is there either way). These run on ``onnxruntime`` + ``tokenizers`` +
``numpy`` only, and int8 matmuls are several times faster than float32 on 2 cores. Their outputs have the
same types and meaning as Haystack's (``embedding``/``documents``; ``answers`` as ``ExtractedAnswer``),
and the reader scores spans exactly like ``bot.reader.QabotReader`` (the PyTorch path):
sigmoid(factor × (span logit − null logit) + bias).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, ExtractedAnswer, component
from tokenizers import Tokenizer

from bot.errors import ModelLoadError
from bot.span_decoding import calibrated, decode_window


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def load_tokenizer(path: Path) -> Tokenizer:
    """A ``tokenizer.json``, or ModelLoadError naming the file (the tokenizers library raises bare Exceptions)."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:
        raise ModelLoadError(f"cannot load the tokenizer {path}: {_first_line(error)}") from error


def twin_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """A second Tokenizer over the same parsed model, with truncation and padding settings of its own.

    Those settings belong to a Tokenizer object, and the reader needs two set-ups (one cutting windows, one
    counting a whole question). The vocabulary, normalizer and pre-tokenizer objects are shared, not copied and
    not parsed again from ``tokenizer.json`` (our reader's: 0.7 MB, 12 ms a parse on the 2-core machine, idle:
    ``python -m timeit -s 'from tokenizers import Tokenizer' "Tokenizer.from_file('models/reader/tokenizer.json')"``);
    the added tokens ([CLS], [SEP], …) are registered again, so text containing them is split the same way.
    """
    twin = Tokenizer(tokenizer.model)
    for part in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
        if getattr(tokenizer, part) is not None:
            setattr(twin, part, getattr(tokenizer, part))
    added = [token for _, token in sorted(tokenizer.get_added_tokens_decoder().items())]
    twin.add_special_tokens([token for token in added if token.special])
    twin.add_tokens([token for token in added if not token.special])
    return twin


def onnx_session(path: Path, threads: int | None = None):
    """A CPU ONNX Runtime session set up as qabot runs its models (full graph optimisation, no spinning).

    A missing, truncated or corrupt model file is a ModelLoadError naming the file, not ONNX Runtime's trace.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The embedder and reader sessions run one after the other on the same 2 cores. With spinning on (ORT's
    # default), the embedder's idle threads keep spinning while the reader runs and halve its speed
    # (benchmarks/hot_path_effects.py: the reader's call after an embedder call, 55 ms vs 34 ms without).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own exception types (InvalidProtobuf, Fail, ...) are not public API
        raise ModelLoadError(f"cannot load the ONNX model {path}: {_first_line(error)}") from error


def _pad(encodings, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    return ids, mask


def length_batches(lengths: list[int], max_rows: int, max_tokens: int | None = None) -> list[list[int]]:
    """Indices of ``lengths`` cut into batches from the shortest to the longest, each at most ``max_rows`` long
    and, with ``max_tokens``, at most that many tokens once padded to its longest member (one row at least).

    Sorting first means a batch pads only to its own longest text, not to a long one drawn at random; the
    token cap keeps batches of long texts small and lets batches of short ones grow.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        padded = (len(current) + 1) * lengths[index]  # sorted: this text is the batch's longest so far
        if current and (len(current) >= max_rows or (max_tokens is not None and padded > max_tokens)):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the host's count inside a container)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _OnnxSentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings (the all-MiniLM-L6-v2 recipe) from an ONNX encoder.

    ``workers`` > 1 runs that many ONNX Runtime calls at once (each on its own batch; the session is
    thread-safe and releases the GIL), which with ``threads=1`` is how bulk indexing uses the cores.
    """

    def __init__(
        self, onnx_path: Path, tokenizer_path: Path, max_length: int, threads: int | None, workers: int = 1
    ) -> None:
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.session = onnx_session(onnx_path, threads)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self.workers = max(1, workers)

    def encode(
        self,
        texts: list[str],
        batch_size: int = 32,
        progress_bar: bool = False,
        max_batch_tokens: int | None = None,
    ) -> np.ndarray:
        """Vectors in the order of ``texts``; each text is tokenized once (batch API), and batches are cut by
        ``length_batches``."""
        encodings = self.tokenizer.encode_batch(texts)
        batches = length_batches([len(e.ids) for e in encodings], batch_size, max_batch_tokens)
        bar = None
        if progress_bar:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="embedding chunks", unit="chunk")

        def embed(rows: list[int]) -> tuple[list[int], np.ndarray]:
            ids, mask = _pad([encodings[i] for i in rows], self.pad_id)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (hidden,) = self.session.run(["last_hidden_state"], feeds)
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            return rows, pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

        if self.workers > 1 and len(batches) > 1:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="qabot-embed") as pool:
                vectors = self._collect(pool.map(embed, batches), len(texts), bar)
        else:
            vectors = self._collect(map(embed, batches), len(texts), bar)
        if bar is not None:
            bar.close()
        return vectors

    @staticmethod
    def _collect(results: Iterable[tuple[list[int], np.ndarray]], count: int, bar: Any) -> np.ndarray:
        """The batches' vectors put back in input order (a batch's rows are indices into ``texts``)."""
        vectors = np.zeros((count, 0), dtype=np.float32)
        for rows, normalised in results:
            if not vectors.shape[1]:
                vectors = np.zeros((count, normalised.shape[1]), dtype=np.float32)
            vectors[rows] = normalised
            if bar is not None:
                bar.update(len(rows))
        return vectors


@component
class OnnxTextEmbedder:
    """Question → normalised embedding (drop-in for SentenceTransformersTextEmbedder)."""

    def __init__(self, onnx_path: Path, tokenizer_path: Path, max_length: int = 256, threads: int | None = None):
        self.onnx_path, self.tokenizer_path, self.max_length, self.threads = (
            onnx_path,
            tokenizer_path,
            max_length,
            threads,
        )
        self._encoder: _OnnxSentenceEncoder | None = None

    def warm_up(self) -> None:
        if self._encoder is None:
            self._encoder = _OnnxSentenceEncoder(self.onnx_path, self.tokenizer_path, self.max_length, self.threads)

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, np.ndarray]:
        """The question's vector as a float32 numpy array, which the FAISS store takes as it takes a list.

        Not a ``list``: Haystack's ``Pipeline.run`` deep-copies every list it passes between components
        element by element, with a Protocol ``isinstance`` check per float: 4.2 ms for 384 floats against
        0.01 ms for an array (benchmarks/hot_path_effects.py).
        """
        self.warm_up()
        return {"embedding": self._encoder.encode([text])[0]}  # type: ignore[union-attr]


@component
class OnnxDocumentEmbedder:
    """Documents → the same documents with normalised embeddings (drop-in for the document embedder).

    Tuned for bulk indexing, not for one text: ``workers`` concurrent single-threaded ONNX Runtime calls
    (default: one per available core) on small length-sorted batches of at most ``max_batch_tokens`` padded
    tokens. ``benchmarks/embedder_throughput.py`` on 768 chunks of the 40 held-out SQuAD articles, measured
    under load on the 2-core machine: 108 chunks per CPU second against 79 for one 2-thread session on
    batches of 32 (the batch shape is most of it: 114 with 2 threads on these batches); with both cores (at
    nice -15 while other work ran; benchmarks/README.md), 243 chunks/s of wall clock against 159 (and 193 for
    one 2-thread session on these batches). A small batch's activations stay in the cores' caches, and one
    intra-op thread per call needs no hand-over between threads at every operator. int8 numerics depend a
    little on the batch a text is in, so vectors differ slightly from the earlier batching's (corpus EM/F1
    within 0.7 point, ``benchmarks/corpus_benchmark.py``).
    """

    def __init__(
        self,
        onnx_path: Path,
        tokenizer_path: Path,
        max_length: int = 256,
        batch_size: int = 32,
        progress_bar: bool = True,
        max_batch_tokens: int | None = 512,
        workers: int | None = None,
    ) -> None:
        self.onnx_path, self.tokenizer_path, self.max_length = onnx_path, tokenizer_path, max_length
        self.batch_size, self.progress_bar, self.max_batch_tokens = batch_size, progress_bar, max_batch_tokens
        self.workers = workers or available_cores()
        self._encoder: _OnnxSentenceEncoder | None = None

    def warm_up(self) -> None:
        if self._encoder is None:
            self._encoder = _OnnxSentenceEncoder(
                self.onnx_path, self.tokenizer_path, self.max_length, threads=1, workers=self.workers
            )

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        vectors = self.embed([d.content or "" for d in documents])
        return {"documents": [replace(d, embedding=v.tolist()) for d, v in zip(documents, vectors, strict=True)]}

    def embed(self, texts: list[str]) -> np.ndarray:
        """The texts' vectors as one float32 array (what ``run`` puts on the documents, without a Python float
        per dimension: ``bot.indexing`` keeps the vectors as an array anyway)."""
        self.warm_up()
        return self._encoder.encode(  # type: ignore[union-attr]
            texts, self.batch_size, self.progress_bar, self.max_batch_tokens
        )


@component
class OnnxExtractiveReader:
    """Extractive QA on an ONNX Runtime session: windows, logits, null-relative span scores, top answers.

    Spans are decoded by ``bot.span_decoding`` (the one decoder the PyTorch reader and training evaluation
    use too): limited to the passage tokens and to ``max_answer_tokens``, each scored against its own window's
    [CLS] null logit, as our reader was trained. Each answer's ``meta["margin"]`` is that raw margin.
    """

    def __init__(
        self,
        model_dir: Path,
        onnx_path: Path,
        top_k: int = 8,
        max_seq_length: int = 256,
        stride: int = 96,
        calibration_factor: float = 0.25,
        calibration_bias: float = 0.0,
        null_relative_scores: bool = True,
        max_answer_tokens: int = 30,
        answers_per_window: int = 8,
        threads: int | None = None,
        max_batch_windows: int = 4,
    ) -> None:
        self.model_dir, self.onnx_path = model_dir, onnx_path
        self.top_k, self.max_seq_length, self.stride = top_k, max_seq_length, stride
        self.calibration_factor, self.calibration_bias = calibration_factor, calibration_bias
        self.null_relative_scores = null_relative_scores
        self.max_answer_tokens, self.answers_per_window, self.threads = max_answer_tokens, answers_per_window, threads
        self.max_batch_windows = max_batch_windows
        self._tokenizer: Tokenizer | None = None
        self._session = None

    def warm_up(self) -> None:
        if self._session is not None:
            return
        tokenizer = load_tokenizer(Path(self.model_dir) / "tokenizer.json")
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_seq_length, stride=self.stride, strategy="only_second")
        self._tokenizer = tokenizer
        # A twin without truncation counts question tokens (truncation settings are per tokenizer object);
        # tokenizer.json is parsed once, for both.
        self._counter = twin_tokenizer(tokenizer)
        self._counter.no_padding()
        self._counter.no_truncation()
        self._pad_id = tokenizer.token_to_id("[PAD]") or 0
        self._session = onnx_session(self.onnx_path, self.threads)
        self._wants_token_types = any(i.name == "token_type_ids" for i in self._session.get_inputs())

    def question_tokens(self, question: str) -> int:
        """How many of the window's tokens ``question`` takes (special tokens not counted)."""
        self.warm_up()
        return len(self._counter.encode(question, add_special_tokens=False).ids)

    @component.output_types(answers=list[ExtractedAnswer])
    def run(self, query: str, documents: list[Document], top_k: int | None = None) -> dict[str, list[ExtractedAnswer]]:
        return {"answers": self.run_batch([query], [documents], top_k)[0]}

    def run_batch(
        self, queries: list[str], documents: list[list[Document]], top_k: int | None = None
    ) -> list[list[ExtractedAnswer]]:
        """Read several questions, each over its own passages: one tokenizer call and one post-processing
        pass for all of them, the model per question (see ``_logits``)."""
        self.warm_up()
        pairs = [(qi, doc) for qi, docs in enumerate(documents) for doc in docs if doc.content]
        if not pairs:
            return [[] for _ in queries]
        windows, owners = [], []
        encodings = self._tokenizer.encode_batch([(queries[qi], doc.content) for qi, doc in pairs])  # type: ignore[union-attr]
        for pair_index, encoding in enumerate(encodings):
            for window in [encoding, *encoding.overflowing]:
                windows.append(window)
                owners.append(pair_index)
        start_logits, end_logits = self._logits(windows, [pairs[owner][0] for owner in owners])
        answers: list[list[ExtractedAnswer]] = [[] for _ in queries]
        for window, owner, start, end in zip(windows, owners, start_logits, end_logits, strict=True):
            query_index, document = pairs[owner]
            answers[query_index].extend(self._window_answers(queries[query_index], document, window, start, end))
        for found in answers:
            found.sort(key=lambda a: a.score, reverse=True)
            del found[top_k or self.top_k :]
        return answers

    def _logits(self, windows: list, questions: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Start/end logits per window: each question's windows on their own, sorted by length, at most
        ``max_batch_windows`` per ONNX Runtime call.

        Per question, because dynamic int8 quantization scales a call's activations by their overall range:
        windows of another chat's question in the same call shift the logits a little, enough to change a
        borderline answer. Reading each question on its own makes ``answer_many`` give exactly the answers
        ``answer`` gives. Calls of 4 are also a little faster per window than calls of 1 or 16 on 2 cores
        (8.7 vs 10.3 and 9.2 ms per 134-token window, benchmarks/hot_path_effects.py) and bound a burst's
        memory: one call over 16 questions x 4 passages peaked at 856 MB of RSS (run_benchmark.py, 6394963).
        """
        starts: list[np.ndarray] = [np.empty(0)] * len(windows)
        ends: list[np.ndarray] = [np.empty(0)] * len(windows)
        by_question: dict[int, list[int]] = {}
        for index, question in enumerate(questions):
            by_question.setdefault(question, []).append(index)
        for indices_of_question in by_question.values():
            mine = sorted(indices_of_question, key=lambda i: len(windows[i].ids))
            for begin in range(0, len(mine), self.max_batch_windows):
                indices = mine[begin : begin + self.max_batch_windows]
                ids, mask = _pad([windows[i] for i in indices], self._pad_id)
                feeds = {"input_ids": ids, "attention_mask": mask}
                if self._wants_token_types:
                    feeds["token_type_ids"] = np.zeros_like(ids)
                start, end = self._session.run(["start_logits", "end_logits"], feeds)  # type: ignore[union-attr]
                for row, i in enumerate(indices):
                    starts[i], ends[i] = start[row], end[row]
        return starts, ends

    def _window_answers(self, query, document, window, start: np.ndarray, end: np.ndarray) -> list[ExtractedAnswer]:
        passage = [i for i, s in enumerate(window.sequence_ids) if s == 1]
        decoded = decode_window(
            start,
            end,
            passage,
            window.offsets,
            max_answer_tokens=self.max_answer_tokens,
            top_n=self.answers_per_window,
            null_relative=self.null_relative_scores,
        )
        return [
            ExtractedAnswer(
                query=query,
                score=calibrated(span.margin, self.calibration_factor, self.calibration_bias),
                data=document.content[span.char_start : span.char_end],
                document=document,
                document_offset=ExtractedAnswer.Span(span.char_start, span.char_end),
                meta={"margin": span.margin},
            )
            for span in decoded.spans
        ]
