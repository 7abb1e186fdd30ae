# Generated from chapters/01_tokenizer.ipynb by tools/export.py; do not edit, edit the chapter.

"""Tokenizers: turning text into integer ids and back (chapter 01 of llmbook)."""

import heapq
import json
import operator
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import regex


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text


class SimpleTokenizer:
    """A word-level tokenizer: words and punctuation marks are the tokens.

    Words missing from the vocabulary become ``<|unk|>``: encoding never fails, but what the
    unknown word was is lost. ``decode`` joins words with spaces, so exact whitespace is lost too.
    """

    SPLIT = regex.compile(r'([,.:;?_!"()\']|--|\s)')

    def __init__(self, vocab: dict[str, int], unk_token: str = "<|unk|>"):
        if unk_token not in vocab:
            raise ValueError(f"unk_token {unk_token!r} must be in the vocabulary")
        self.str_to_int = dict(vocab)
        self.int_to_str = {i: s for s, i in vocab.items()}
        if len(self.int_to_str) != len(self.str_to_int):
            raise ValueError("vocab maps two tokens to the same id")
        self.unk_token = unk_token

    @classmethod
    def split(cls, text: str) -> list[str]:
        """Split text into words and punctuation marks, dropping whitespace."""
        return [piece for piece in cls.SPLIT.split(_check_text(text)) if piece.strip()]

    @classmethod
    def from_text(
        cls, text: str, special_tokens: Iterable[str] = ("<|endoftext|>", "<|unk|>")
    ) -> "SimpleTokenizer":
        """Number the distinct words of ``text`` in sorted order, then append the special tokens."""
        special_tokens = list(special_tokens)
        if "<|unk|>" not in special_tokens:
            raise ValueError(f"special_tokens must include '<|unk|>', got {special_tokens}")
        words = sorted(set(cls.split(text)) - set(special_tokens))
        return cls({token: i for i, token in enumerate(words + special_tokens)})

    def __len__(self) -> int:
        return len(self.str_to_int)

    def encode(self, text: str) -> list[int]:
        """Split ``text`` into words and punctuation and map each to its id (``<|unk|>`` if unknown)."""
        unk = self.str_to_int[self.unk_token]
        return [self.str_to_int.get(word, unk) for word in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Join the words of ``ids`` with single spaces, then pull punctuation back onto the words."""
        words = []
        for i in ids:
            if i not in self.int_to_str:
                raise ValueError(f"id {i!r} is not in the vocabulary (ids 0..{len(self) - 1})")
            words.append(self.int_to_str[i])
        return regex.sub(r'\s+([,.:;?!"()\'])', r"\1", " ".join(words))


def pair_counts(ids: list[int]) -> Counter:
    """Count each adjacent pair of ``ids``: ``[1, 2, 1, 2]`` -> ``{(1, 2): 2, (2, 1): 1}``."""
    return Counter(zip(ids, ids[1:]))


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each occurrence of ``pair`` in ``ids`` by ``new_id``, scanning left to right."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)


def _train_merges(chunks: Counter, n_merges: int) -> list[tuple[int, int]]:
    """Learn up to ``n_merges`` merges from pre-split chunks (bytes -> frequency).

    The pair counts are updated incrementally: a merge only touches the distinct chunks that
    contain the pair, so each step costs time proportional to those chunks, not to the text.
    Ties between equally frequent pairs go to the smallest pair, so training is deterministic.
    """
    words = [list(chunk) for chunk in chunks]
    freqs = list(chunks.values())
    counts: Counter = Counter()
    where: dict[tuple[int, int], set[int]] = {}
    for w, (ids, freq) in enumerate(zip(words, freqs)):
        for pair in zip(ids, ids[1:]):
            counts[pair] += freq
            where.setdefault(pair, set()).add(w)
    heap = [(-c, pair) for pair, c in counts.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg:
            continue  # a stale entry: the count changed after it was pushed
        if -neg < 2:
            break  # merging a pair that occurs once compresses nothing
        new_id = 256 + len(merges)
        merges.append(pair)
        touched: Counter = Counter()
        for w in where.pop(pair):
            ids, freq = words[w], freqs[w]
            for p in zip(ids, ids[1:]):
                touched[p] -= freq
            ids = words[w] = merge_pair(ids, pair, new_id)
            for p in zip(ids, ids[1:]):
                touched[p] += freq
                where.setdefault(p, set()).add(w)
        for p, change in touched.items():
            if change:
                counts[p] += change
                if counts[p] > 0:
                    heapq.heappush(heap, (-counts[p], p))
                else:
                    del counts[p]
        counts.pop(pair, None)
    return merges


FILE_MAGIC = "llmbook-bpe v1"


def _split_specials(text: str, specials: Iterable[str]) -> list[str]:
    """Split ``text`` around occurrences of the special tokens, keeping them as separate pieces."""
    specials = sorted(specials, key=len, reverse=True)  # longest first, so no prefix wins
    if not specials:
        return [text]
    pattern = "(" + "|".join(regex.escape(s) for s in specials) + ")"
    return [piece for piece in regex.split(pattern, text) if piece]


def _bpe_split(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """Merge the bytes of ``token`` by rank, using only ranks below ``max_rank``."""
    parts = [bytes([b]) for b in token]
    while True:
        best, best_rank = None, max_rank
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best, best_rank = i, rank
        if best is None:
            return parts
        parts[best : best + 2] = [parts[best] + parts[best + 1]]


class BPETokenizer:
    """A byte-level byte-pair-encoding tokenizer with regex pre-splitting and special tokens.

    Ids of the 256 single bytes come first (``byte_ids``), then one id per merge, then the
    special tokens. The merge that produces the smallest id is applied first when encoding,
    which is the rule tiktoken uses, so a tokenizer rebuilt with ``from_tiktoken`` gives
    exactly tiktoken's ids.
    """

    def __init__(
        self,
        merges: dict[tuple[int, int], int],
        pattern: str = GPT4_SPLIT_PATTERN,
        special_tokens: dict[str, int] | None = None,
        byte_ids: list[int] | None = None,
    ):
        self.byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
        if len(self.byte_ids) != 256 or len(set(self.byte_ids)) != 256:
            raise ValueError("byte_ids must give 256 distinct ids, one per byte value")
        self.merges = dict(merges)
        self.pattern = pattern
        self.special_tokens = dict(special_tokens or {})
        for token in self.special_tokens:
            if not isinstance(token, str) or not token:
                raise ValueError(f"special tokens must be non-empty strings, got {token!r}")
        self.vocab: dict[int, bytes] = {i: bytes([b]) for b, i in enumerate(self.byte_ids)}
        for (a, b), i in sorted(self.merges.items(), key=lambda item: item[1]):
            if a not in self.vocab or b not in self.vocab:
                raise ValueError(f"merge ({a}, {b}) -> {i} uses an id defined by no earlier merge")
            if i in self.vocab:
                raise ValueError(f"id {i} is defined twice")
            self.vocab[i] = self.vocab[a] + self.vocab[b]
        for token, i in self.special_tokens.items():
            if i in self.vocab:
                raise ValueError(f"special token {token!r} reuses id {i}")
        if len(set(self.special_tokens.values())) != len(self.special_tokens):
            raise ValueError(f"special tokens must have distinct ids, got {self.special_tokens}")
        try:
            self._compiled = regex.compile(pattern)
        except (regex.error, TypeError) as error:
            raise ValueError(f"pattern must be a valid regular expression, got {pattern!r}: {error}") from None
        self._specials_by_id = {i: s.encode("utf-8") for s, i in self.special_tokens.items()}
        self._cache: dict[bytes, list[int]] = {}

    # -- training ---------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        special_tokens: Iterable[str] = (),
        pattern: str = GPT4_SPLIT_PATTERN,
    ) -> "BPETokenizer":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``.

        Special tokens found in ``text`` separate it and are never merged. Training stops early
        (with a smaller vocabulary) when no pair occurs twice any more.
        """
        _check_text(text)
        special_tokens = list(dict.fromkeys(special_tokens))
        for token in special_tokens:
            if not isinstance(token, str) or not token:
                raise ValueError(f"special_tokens must be non-empty strings, got {token!r}")
        if not isinstance(vocab_size, int) or vocab_size < 256 + len(special_tokens):
            raise ValueError(
                f"vocab_size must be an int >= 256 + {len(special_tokens)} (bytes + special tokens), got {vocab_size!r}"
            )
        compiled = regex.compile(pattern)
        chunks: Counter = Counter()
        for piece in _split_specials(text, special_tokens):
            if piece not in special_tokens:
                chunks.update(c.encode("utf-8") for c in compiled.findall(piece))
        merges = _train_merges(chunks, vocab_size - 256 - len(special_tokens))
        merge_ids = {pair: 256 + i for i, pair in enumerate(merges)}
        first_special = 256 + len(merges)
        specials = {s: first_special + i for i, s in enumerate(special_tokens)}
        return cls(merge_ids, pattern, specials)

    # -- encoding and decoding -----------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids, i.e. one more than the largest id."""
        return 1 + max(list(self.vocab) + list(self._specials_by_id))

    def __len__(self) -> int:
        return self.vocab_size

    def _encode_chunk(self, chunk: bytes) -> list[int]:
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = [self.byte_ids[b] for b in chunk]
        while len(ids) >= 2:
            # The mergeable pair whose merge has the lowest rank (id) goes first.
            pair = min(zip(ids, ids[1:]), key=lambda p: self.merges.get(p, float("inf")))
            if pair not in self.merges:
                break
            ids = merge_pair(ids, pair, self.merges[pair])
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` treating special-token strings as ordinary text."""
        ids: list[int] = []
        for chunk in self._compiled.findall(_check_text(text)):
            ids.extend(self._encode_chunk(chunk.encode("utf-8")))
        return ids

    def encode(self, text: str, allowed_special: str | set[str] = "none_raise") -> list[int]:
        """Encode ``text`` into ids.

        ``allowed_special`` says what to do with special-token strings found in the text:
        ``"all"`` or a set of names encode them (those named) as their special ids; ``"none"``
        encodes every one as ordinary text; with ``"none_raise"`` (the default) or a set, a
        special token that is not allowed raises ``ValueError``, as tiktoken does by default.
        """
        _check_text(text)
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif allowed_special in ("none", "none_raise"):
            allowed = set()
        elif isinstance(allowed_special, (set, frozenset)):
            unknown = sorted(allowed_special - set(self.special_tokens))
            if unknown:
                raise ValueError(f"allowed_special names tokens this tokenizer lacks: {unknown}")
            allowed = set(allowed_special)
        else:
            raise ValueError(f"allowed_special must be 'all', 'none', 'none_raise' or a set, got {allowed_special!r}")
        if allowed_special != "none":
            found = sorted(s for s in self.special_tokens if s not in allowed and s in text)
            if found:
                raise ValueError(
                    f"text contains special token {found[0]!r}. Pass allowed_special={{{found[0]!r}}} "
                    "(or 'all') to encode it as a special token, or allowed_special='none' to encode it "
                    "as ordinary text"
                )
        ids: list[int] = []
        for piece in _split_specials(text, allowed):
            if piece in allowed:
                ids.append(self.special_tokens[piece])
            else:
                ids.extend(self.encode_ordinary(piece))
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Concatenate the bytes of ``ids`` (any iterable of integers, e.g. a list or a 1-d tensor)."""
        out = []
        for i in ids:
            try:
                i = operator.index(i)  # accepts Python, NumPy and 0-d tensor integers
            except TypeError:
                raise TypeError(f"ids must be integers, got {type(i).__name__}") from None
            piece = self.vocab.get(i)
            if piece is None:
                piece = self._specials_by_id.get(i)
                if piece is None:
                    raise ValueError(f"id {i} is not in the vocabulary (ids 0..{self.vocab_size - 1})")
            out.append(piece)
        return b"".join(out)

    def decode(self, ids: Iterable[int]) -> str:
        """Decode ids to text; byte sequences that are not valid UTF-8 become U+FFFD, as in tiktoken."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # -- saving and loading ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the tokenizer as readable text: the pattern, the byte ids, one merge per line, specials.

        The file is written to a temporary name and renamed, so a crash never leaves half a file.
        """
        lines = [FILE_MAGIC, f"pattern {json.dumps(self.pattern)}"]
        if self.byte_ids != list(range(256)):
            lines.append("bytes " + " ".join(map(str, self.byte_ids)))
        lines.append(f"merges {len(self.merges)}")
        for (a, b), i in sorted(self.merges.items(), key=lambda item: item[1]):
            lines.append(f"{a} {b} {i}  # {self.vocab[i]!r}")
        for token, i in sorted(self.special_tokens.items(), key=lambda item: item[1]):
            lines.append(f"special {i} {json.dumps(token)}")
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        """Read a file written by ``save``; anything else raises ``ValueError`` naming the line."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not an llmbook BPE file (not UTF-8 text)") from None
        if not lines or lines[0] != FILE_MAGIC:
            raise ValueError(f"{path} is not an llmbook BPE file (first line should be {FILE_MAGIC!r})")
        pattern, byte_ids, merges, specials, n_merges = None, None, {}, {}, None
        for number, line in enumerate(lines[1:], start=2):
            try:
                line = line.strip()
                if not line:
                    continue
                key, _, rest = line.partition(" ")
                if key.isdigit():  # a merge line: "left right new_id  # the bytes it makes"
                    line = line.split("#", 1)[0]
                if key == "pattern":
                    pattern = json.loads(rest)
                    if not isinstance(pattern, str):
                        raise ValueError("the pattern must be a JSON string")
                elif key == "bytes":
                    byte_ids = [int(x) for x in rest.split()]
                elif key == "merges":
                    n_merges = int(rest)
                elif key == "special":
                    i, token = rest.split(" ", 1)
                    token = json.loads(token)
                    if not isinstance(token, str):
                        raise ValueError("a special token must be a JSON string")
                    specials[token] = int(i)
                else:
                    a, b, i = (int(x) for x in line.split())
                    merges[(a, b)] = i
            except ValueError:
                raise ValueError(f"{path}, line {number}: cannot read {line[:60]!r}") from None
        if pattern is None or n_merges != len(merges):
            raise ValueError(f"{path} is incomplete: pattern or merges missing (truncated file?)")
        try:
            return cls(merges, pattern, specials, byte_ids)
        except ValueError as error:
            raise ValueError(f"{path} is not a consistent tokenizer: {error}") from None

    # -- production tokenizers -------------------------------------------------------------------
    @classmethod
    def from_tiktoken(cls, encoding) -> "BPETokenizer":
        """Rebuild the merge table of a tiktoken encoding (an ``Encoding`` or its name).

        tiktoken stores only each token's bytes and rank. The merge that made a token is found
        by running BPE on its bytes with only the lower ranks allowed: that stops at exactly
        two parts, the pair that was merged.
        """
        import tiktoken

        if isinstance(encoding, str):
            encoding = tiktoken.get_encoding(encoding)
        ranks: dict[bytes, int] = encoding._mergeable_ranks
        byte_ids = [ranks[bytes([b])] for b in range(256)]
        merges = {}
        for token, rank in ranks.items():
            if len(token) < 2:
                continue
            parts = _bpe_split(ranks, token, max_rank=rank)
            if len(parts) != 2:
                raise ValueError(f"token {token!r} (rank {rank}) is not the merge of two earlier tokens")
            merges[(ranks[parts[0]], ranks[parts[1]])] = rank
        return cls(merges, encoding._pat_str, dict(encoding._special_tokens), byte_ids)

    def to_tiktoken(self, name: str = "llmbook"):
        """Return a ``tiktoken.Encoding`` with this tokenizer's merges: the same ids, encoded faster."""
        import tiktoken

        ranks = {piece: i for i, piece in self.vocab.items()}
        if len(ranks) != len(self.vocab):
            raise ValueError("two ids share the same bytes; tiktoken needs one rank per byte string")
        return tiktoken.Encoding(name, pat_str=self.pattern, mergeable_ranks=ranks, special_tokens=self.special_tokens)

    def __repr__(self) -> str:
        specials = len(self.special_tokens)
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, specials={specials})"


__all__ = [
    "SimpleTokenizer",
    "pair_counts",
    "merge_pair",
    "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN",
    "FILE_MAGIC",
    "BPETokenizer",
]
