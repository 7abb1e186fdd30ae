# Generated from chapters/01_tokenizer.ipynb by tools/export.py; do not edit, edit the chapter.

"""Tokenizers: turning text into integer ids and back (chapter 01 of llmbook).

The classes grow in layers, in the chapter's order: ``SimpleTokenizer`` (words), ``ByteBPE``
(byte-pair encoding on bytes), ``RegexBPE`` (+ regex pre-split), ``SpecialBPE`` (+ special
tokens) and ``BPETokenizer`` (+ streaming, files, tiktoken and Hugging Face converters).
"""

import hashlib
import heapq
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path

import regex

from llmbook.checks import check_int
from llmbook.checks.tokenizer import (
    check_id,
    check_ids,
    check_merges,
    check_pattern,
    check_special_ids,
    check_special_names,
    check_text,
    check_word_vocab,
    hf_tokenizer_files,
    read_merges_txt,
    read_tokenizer_json,
    read_vocab_json,
)
from llmbook.io.files import atomic_write


class SimpleTokenizer:
    """A word-level tokenizer: words and punctuation marks are the tokens.

    Words missing from the vocabulary become ``<|unk|>``: encoding never fails, but what the
    unknown word was is lost. ``decode`` joins words with spaces, so exact whitespace is lost too.
    """

    SPLIT = regex.compile(r'([,.:;?_!"()\']|--|\s)')

    def __init__(self, vocab: dict[str, int], unk_token: str = "<|unk|>"):
        self.str_to_int, self.int_to_str = check_word_vocab(vocab, unk_token)  # word <-> id
        self.unk_token = unk_token

    @classmethod
    def split(cls, text: str) -> list[str]:
        """Split text into words and punctuation marks, dropping whitespace."""
        return [piece for piece in cls.SPLIT.split(check_text(text)) if piece.strip()]

    @classmethod
    def from_text(cls, text: str, special_tokens: Iterable[str] = ("<|endoftext|>", "<|unk|>")):
        """Number the distinct words of ``text`` in sorted order, then append the special tokens."""
        special_tokens = check_special_names(special_tokens)
        if "<|unk|>" not in special_tokens:
            raise ValueError(f"special_tokens must include '<|unk|>', got {special_tokens}")
        words = sorted(set(cls.split(text)) - set(special_tokens))
        return cls({token: i for i, token in enumerate(words + special_tokens)})

    def __len__(self) -> int:
        return len(self.str_to_int)

    def encode(self, text: str) -> list[int]:
        """Split ``text`` into words and punctuation; map each to its id (``<|unk|>`` if unknown)."""
        unk = self.str_to_int[self.unk_token]
        return [self.str_to_int.get(word, unk) for word in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Join the words of ``ids`` with spaces, then pull punctuation back onto the words."""
        words = [self.int_to_str[i] for i in check_ids(ids, self.int_to_str)]
        return regex.sub(r'\s+([,.:;?!"()\'])', r"\1", " ".join(words))


def _valid_unicode(text: str) -> str:
    """``text``, or (if it holds lone surrogates) the repair tiktoken applies: each becomes U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


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


def _index_pairs(words: list[list[int]], freqs: list[int]) -> tuple[Counter, dict]:
    """``counts``: pair -> occurrences, weighted by chunk frequency; ``where``: pair -> the
    indices of the chunks that hold it. ``words[w]`` is chunk w as ids, ``freqs[w]`` its count."""
    counts: Counter = Counter()
    where: dict[tuple[int, int], set[int]] = {}
    for w, (ids, freq) in enumerate(zip(words, freqs)):
        for pair in zip(ids, ids[1:]):
            counts[pair] += freq
            where.setdefault(pair, set()).add(w)
    return counts, where


def _apply_merge(words, freqs, where, pair: tuple[int, int], new_id: int) -> Counter:
    """Merge ``pair`` into ``new_id`` in every chunk that holds it (updating ``words`` and
    ``where``); return the change of each pair's count."""
    change: Counter = Counter()
    for w in where.pop(pair):
        ids, freq = words[w], freqs[w]
        for p in zip(ids, ids[1:]):
            change[p] -= freq
        ids = words[w] = merge_pair(ids, pair, new_id)
        for p in zip(ids, ids[1:]):
            change[p] += freq
            where.setdefault(p, set()).add(w)
    return change


def _train_merges(chunks: Counter, n_merges: int) -> list[tuple[int, int]]:
    """Learn up to ``n_merges`` merges from chunks (bytes -> frequency); the merges in order.

    Each step merges the most frequent pair; ties go to the smallest pair ``(a, b)`` (ids
    compared as tuples), so training is deterministic. Counts are updated only for the chunks
    that contain the merged pair. Stops early when no pair occurs twice.
    """
    words, freqs = [list(chunk) for chunk in chunks], list(chunks.values())
    counts, where = _index_pairs(words, freqs)
    heap = [(-c, pair) for pair, c in counts.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg:
            continue  # a stale entry: the count changed after it was pushed
        if -neg < 2:
            break  # the most frequent pair occurs once: nothing repeats any more
        new_id = 256 + len(merges)
        merges.append(pair)
        for p, change in _apply_merge(words, freqs, where, pair, new_id).items():
            if change:
                counts[p] += change
                if counts[p] > 0:
                    heapq.heappush(heap, (-counts[p], p))
                else:
                    del counts[p]
        counts.pop(pair, None)
    return merges


class ByteBPE:
    """Byte-level BPE. ``merges``: pair of ids -> the id it makes, in rank order (earliest first);
    ``byte_ids[b]``: the id of byte b."""

    def __init__(self, merges: dict[tuple[int, int], int], byte_ids: Iterable[int] | None = None):
        self.byte_ids, self.merges, self.vocab = check_merges(merges, byte_ids)
        self._ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self._decoder = self.vocab

    @classmethod
    def train(cls, text: str, vocab_size: int) -> "ByteBPE":
        """Learn up to ``vocab_size - 256`` merges on the bytes of ``text``."""
        check_int(vocab_size, "vocab_size", 256)
        data = _valid_unicode(check_text(text)).encode("utf-8")
        merges = _train_merges(Counter([data]), vocab_size - 256)
        return cls({pair: 256 + i for i, pair in enumerate(merges)})

    def _encode_chunk(self, chunk: bytes) -> list[int]:
        ids = [self.byte_ids[b] for b in chunk]
        while len(ids) >= 2:  # merge the pair of lowest rank, until no learned pair is left
            pair = min(zip(ids, ids[1:]), key=lambda p: self._ranks.get(p, math.inf))
            if pair not in self._ranks:
                break
            ids = merge_pair(ids, pair, self.merges[pair])
        return ids

    def encode(self, text: str) -> list[int]:
        """Encode ``text``; lone surrogates become U+FFFD, as in tiktoken."""
        return self._encode_chunk(_valid_unicode(check_text(text)).encode("utf-8"))

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Concatenate the bytes of ``ids`` (a list, a NumPy array or a 1-d tensor of integers)."""
        return b"".join([self._decoder[i] for i in check_ids(ids, self._decoder)])

    def decode(self, ids: Iterable[int]) -> str:
        """Decode ``ids``; bytes that are not valid UTF-8 become U+FFFD, as in tiktoken."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def __len__(self) -> int:
        """One more than the largest id: the rows an embedding table for these ids needs."""
        return 1 + max(self._decoder)

    vocab_size = property(__len__)  # tok.vocab_size == len(tok)


GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)


def _count_chunks(texts: Iterable[str], compiled: regex.Pattern) -> Counter:
    """Count the UTF-8 chunks of ``texts`` under a compiled pre-split pattern."""
    chunks: Counter = Counter()
    for text in texts:
        chunks.update(c.encode("utf-8") for c in compiled.findall(_valid_unicode(text)))
    return chunks


CACHE_SIZE, CACHE_CHUNK_BYTES = 65_536, 256


class RegexBPE(ByteBPE):
    """Byte-level BPE inside the chunks of a regex pre-split: no merge crosses a chunk."""

    def __init__(self, merges, pattern: str = GPT4_SPLIT_PATTERN, byte_ids=None):
        super().__init__(merges, byte_ids)
        self.pattern, self._compiled = pattern, check_pattern(pattern)
        self._cache: dict[bytes, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str = GPT4_SPLIT_PATTERN) -> "RegexBPE":
        """Learn up to ``vocab_size - 256`` merges from the chunks of ``text``."""
        check_int(vocab_size, "vocab_size", 256)
        chunks = _count_chunks([check_text(text)], check_pattern(pattern))
        merges = _train_merges(chunks, vocab_size - 256)
        return cls({pair: 256 + i for i, pair in enumerate(merges)}, pattern)

    def _encode_chunk(self, chunk: bytes) -> list[int]:
        ids = self._cache.get(chunk)
        if ids is None:
            ids = super()._encode_chunk(chunk)
            if len(chunk) <= CACHE_CHUNK_BYTES:  # bounded: short chunks, emptied when full
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.clear()
                self._cache[chunk] = ids
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` chunk by chunk (lone surrogates become U+FFFD, as in tiktoken)."""
        ids: list[int] = []
        for chunk in self._compiled.findall(_valid_unicode(check_text(text))):
            ids.extend(self._encode_chunk(chunk.encode("utf-8")))
        return ids

    def encode(self, text: str) -> list[int]:
        """Encode ``text`` (this layer has no special tokens: the same as ``encode_ordinary``)."""
        return self.encode_ordinary(text)


def _split_specials(text: str, specials: Iterable[str]) -> list[str]:
    """Split ``text`` around occurrences of the special tokens, keeping them as separate pieces."""
    specials = sorted(specials, key=len, reverse=True)  # longest first, so no prefix wins
    if not specials:
        return [text]
    pattern = "(" + "|".join(regex.escape(s) for s in specials) + ")"
    return [piece for piece in regex.split(pattern, text) if piece]


def _allowed_specials(special_tokens: dict[str, int], text: str, allowed_special) -> set[str]:
    """The special tokens to encode as such in ``text``; raise if a disallowed one is present."""
    if allowed_special == "all":
        return set(special_tokens)
    if allowed_special == "none":
        return set()
    if allowed_special == "none_raise":
        allowed_special = frozenset()
    if not isinstance(allowed_special, (set, frozenset)):
        raise ValueError(
            f"allowed_special must be 'all', 'none', 'none_raise' or a set, got {allowed_special!r}"
        )
    unknown = sorted(allowed_special - set(special_tokens))
    if unknown:
        raise ValueError(f"allowed_special names tokens this tokenizer lacks: {unknown}")
    found = sorted(s for s in special_tokens if s not in allowed_special and s in text)
    if found:
        raise ValueError(
            f"text contains special token {found[0]!r}. Pass allowed_special={{{found[0]!r}}} "
            "(or 'all') to encode it as a special token, or allowed_special='none' to encode it "
            "as ordinary text"
        )
    return set(allowed_special)


class SpecialBPE(RegexBPE):
    """Regex-split byte-level BPE with special tokens (ids after the merges, never merged)."""

    def __init__(self, merges, pattern=GPT4_SPLIT_PATTERN, special_tokens=None, byte_ids=None):
        super().__init__(merges, pattern, byte_ids)
        self.special_tokens = check_special_ids(special_tokens, self.vocab)
        specials = {i: s.encode("utf-8") for s, i in self.special_tokens.items()}
        self._decoder = {**self.vocab, **specials}

    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens=(), pattern=GPT4_SPLIT_PATTERN):
        """Learn up to ``vocab_size - 256 - len(special_tokens)`` merges (fewer if no pair repeats).

        Special tokens found in ``text`` separate it and are never merged.
        """
        specials = check_special_names(special_tokens)
        check_int(vocab_size, "vocab_size", 256 + len(specials))
        pieces = [p for p in _split_specials(check_text(text), specials) if p not in specials]
        merges = _train_merges(
            _count_chunks(pieces, check_pattern(pattern)), vocab_size - 256 - len(specials)
        )
        specials_ids = {s: 256 + len(merges) + i for i, s in enumerate(specials)}
        return cls({pair: 256 + i for i, pair in enumerate(merges)}, pattern, specials_ids)

    def encode(self, text: str, allowed_special: str | set[str] = "none_raise") -> list[int]:
        """Encode ``text``; ``allowed_special`` says what to do with special-token strings in it.

        ``"all"`` or a set of names: encode them (those named) as their special ids; ``"none"``:
        encode every one as ordinary text; ``"none_raise"`` (the default) or a set: a special
        token that is not allowed raises ``ValueError``, as tiktoken does by default.
        """
        allowed = _allowed_specials(self.special_tokens, check_text(text), allowed_special)
        ids: list[int] = []
        for piece in _split_specials(text, allowed):
            if piece in allowed:
                ids.append(self.special_tokens[piece])
            else:
                ids.extend(self.encode_ordinary(piece))
        return ids


class BPETokenizer(SpecialBPE):
    """The book's tokenizer: byte-level BPE, regex pre-split, special tokens (chapter 01).

    Ids: the 256 bytes (``byte_ids``), then one per merge, then the special tokens. Encoding
    applies the merge of lowest rank first, as tiktoken does, so ``from_tiktoken`` gives
    tiktoken's ids (up to Unicode tables, see ``from_tiktoken``). Training breaks ties between
    equally frequent pairs by taking the smallest pair ``(a, b)``.
    """

    def encode_iterable(self, texts: Iterable[str], allowed_special="none_raise") -> Iterator[int]:
        """Yield the ids of ``"".join(texts)`` (e.g. an open file), a block of text at a time."""
        return chain.from_iterable(_encode_blocks(self, texts, allowed_special))

    @classmethod
    def from_tiktoken(cls, encoding) -> "BPETokenizer":
        """Rebuild a ``tiktoken.Encoding`` (or its name, e.g. ``"gpt2"``); see ``_from_tiktoken``."""
        return _from_tiktoken(cls, encoding)

    def to_tiktoken(self, name: str = "llmbook"):
        """Return a ``tiktoken.Encoding`` with these merges: the same ids, encoded faster."""
        return _to_tiktoken(self, name)

    def save(self, path: str | Path) -> None:
        """Write a readable, checksummed text file (format in ``_save_bpe``), atomically."""
        _save_bpe(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        """Read a file written by ``save``; a bad or truncated file raises ``ValueError``."""
        return _load_bpe(cls, path)

    @classmethod
    def from_merges(
        cls, vocab: dict[bytes, int], merges, pattern=GPT4_SPLIT_PATTERN, special_tokens=None
    ):
        """Build from a byte vocabulary (bytes -> id) and merges ``[(left, right), ...]`` in rank order."""
        return _from_merges(cls, vocab, merges, pattern, special_tokens)

    @classmethod
    def from_hf(cls, path: str | Path) -> "BPETokenizer":
        """Read a Hugging Face folder: ``tokenizer.json``, or GPT-2's ``vocab.json`` + ``merges.txt``."""
        return _from_hf(cls, path)

    def __repr__(self) -> str:
        n_merges, n_specials = len(self.merges), len(self.special_tokens)
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={n_merges}, specials={n_specials})"
        )


_SURROGATE = regex.compile(r"[\ud800-\udfff]")  # halves of UTF-16 surrogate pairs


def _safe_cut(
    tok: "BPETokenizer", buffer: str, pieces: list[str], allowed: set[str]
) -> tuple[int, int, list[str]]:
    """The last safe cut ``p`` of ``buffer`` (0 if none) and what lies before it: the first ``k``
    ``pieces`` (``_split_specials(buffer, allowed)``) whole, and ``head``, the chunks of piece
    ``k`` before ``p``. Returns ``(p, k, head)``."""
    limit = len(buffer) - max(map(len, tok.special_tokens), default=1) + 1
    end = len(buffer)
    for k in reversed(range(len(pieces))):  # walk back from the end of the buffer
        piece = pieces[k]
        start = end - len(piece)
        if piece in allowed:  # both ends of an allowed special token are safe
            if end <= limit:
                return end, k + 1, []
            if start <= limit:
                return start, k, []
            end = start
            continue
        chunks = tok._compiled.findall(piece)
        if len("".join(chunks)) == len(piece):  # (a pattern that skips text: no cut inside)
            p = end
            for j in reversed(range(len(chunks))):
                after, p = p, p - len(chunks[j])  # chunk j is buffer[p:after]
                if (
                    after < len(buffer)
                    and 0 < p <= limit
                    and not buffer[p - 1].isspace()
                    and not _SURROGATE.search(buffer, p - 1, p + 1)
                ):
                    return p, k, chunks[:j]
        end = start
    return 0, 0, []


_BLOCK_CHARS = 1 << 16  # encode_iterable encodes text in blocks of at least this many characters


def _encode_cut(
    tok: "BPETokenizer", pieces: list[str], allowed: set[str], head: list[str]
) -> list[int]:
    """The ids of whole ``pieces`` (special tokens and the text between them), then of ``head``."""
    ids: list[int] = []
    for piece in pieces:
        ids += [tok.special_tokens[piece]] if piece in allowed else tok.encode_ordinary(piece)
    text = "".join(head)
    if _SURROGATE.search(text):  # encode_ordinary repairs them first, which can change the chunks
        return ids + tok.encode_ordinary(text)
    for chunk in head:
        ids.extend(tok._encode_chunk(chunk.encode("utf-8")))
    return ids


def _encode_blocks(tok: "BPETokenizer", texts: Iterable[str], allowed_special) -> Iterator[list]:
    """The ids of ``"".join(texts)``, a list per block; each block ends at a safe cut."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        raise TypeError(
            f"texts must be an iterable of str (e.g. an open file), got {type(texts).__name__}; use encode()"
        )
    rest, lines, size, wait = "", [], 0, _BLOCK_CHARS
    for text in texts:
        lines.append(check_text(text, "each item of texts"))
        size += len(text)
        if size < wait:
            continue
        block, lines, size = rest + "".join(lines), [], 0
        allowed = _allowed_specials(tok.special_tokens, block, allowed_special)
        pieces = _split_specials(block, allowed)
        cut, k, head = _safe_cut(tok, block, pieces, allowed)
        yield _encode_cut(tok, pieces[:k], allowed, head)
        rest = block[cut:]
        wait = max(_BLOCK_CHARS, len(rest))  # no cut found: wait for as much text again
    yield tok.encode(rest + "".join(lines), allowed_special)


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


def _from_tiktoken(cls, encoding) -> "BPETokenizer":
    """Rebuild the merges of a tiktoken encoding: each token is the merge of the two parts
    that BPE on its bytes, with only lower ranks allowed, stops at.

    Ids are tiktoken's, except on text with code points that the ``regex`` package's Unicode
    tables call letters or numbers and tiktoken's (older) tables do not (characters added in
    recent Unicode versions): there the pre-split, and so the ids, can differ.
    """
    import tiktoken

    if isinstance(encoding, str):
        encoding = tiktoken.get_encoding(encoding)
    if not isinstance(encoding, tiktoken.Encoding):
        raise TypeError(
            f"encoding must be a tiktoken.Encoding or its name (e.g. 'gpt2'), got {type(encoding).__name__}"
        )
    ranks: dict[bytes, int] = encoding._mergeable_ranks
    merges = {}
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) > 1:
            parts = _bpe_split(ranks, token, max_rank=rank)
            if len(parts) != 2:
                raise ValueError(
                    f"token {token!r} (rank {rank}) is not the merge of two earlier tokens"
                )
            merges[(ranks[parts[0]], ranks[parts[1]])] = rank
    byte_ids = [ranks[bytes([b])] for b in range(256)]
    return cls(merges, encoding._pat_str, dict(encoding._special_tokens), byte_ids)


def _to_tiktoken(tok: "BPETokenizer", name: str = "llmbook"):
    """A ``tiktoken.Encoding`` with the merges of ``tok`` (tiktoken uses the id as the rank)."""
    import tiktoken

    if list(tok.merges.values()) != sorted(tok.merges.values()):
        raise ValueError(
            "tiktoken ranks merges by id, but this tokenizer's merge order is not its id order"
        )
    ranks = {piece: i for i, piece in tok.vocab.items()}
    if len(ranks) != len(tok.vocab):
        raise ValueError("two ids share the same bytes; tiktoken needs one rank per byte string")
    return tiktoken.Encoding(
        name, pat_str=tok.pattern, mergeable_ranks=ranks, special_tokens=tok.special_tokens
    )


FILE_MAGIC = "llmbook-bpe v2"


def _save_bpe(tok: "BPETokenizer", path: str | Path) -> None:
    lines = [
        FILE_MAGIC,
        f"pattern {json.dumps(tok.pattern)}",
        "bytes " + " ".join(map(str, tok.byte_ids)),
    ]
    lines.append(f"merges {len(tok.merges)}")
    lines += [f"{a} {b} {i}  # {tok.vocab[i]!r}" for (a, b), i in tok.merges.items()]
    lines.append(f"specials {len(tok.special_tokens)}")
    specials = sorted(tok.special_tokens.items(), key=lambda item: item[1])
    lines += [f"special {i} {json.dumps(token)}" for token, i in specials]
    body = "".join(line + "\n" for line in lines)
    with atomic_write(path, "w", encoding="utf-8", newline="\n") as file:
        file.write(f"{body}sha256 {hashlib.sha256(body.encode('utf-8')).hexdigest()}\nend\n")


def _checked_lines(path: Path) -> list[str]:
    """The lines of a tokenizer file above its checksum, after checking version, end and checksum."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not an llmbook BPE file (not UTF-8 text)") from None
    if not text.startswith(FILE_MAGIC + "\n"):
        raise ValueError(
            f"{path} is not an llmbook BPE file: its first line is {text[:20]!r}, not {FILE_MAGIC!r}"
        )
    body, found, footer = text.rpartition("\nsha256 ")
    digest, _, rest = footer.partition("\n")
    if not found or rest != "end\n":
        raise ValueError(
            f"{path} is truncated or appended to: it must end with a 'sha256 ...' line and 'end'"
        )
    if hashlib.sha256((body + "\n").encode("utf-8")).hexdigest() != digest:
        raise ValueError(
            f"{path} is corrupt: the SHA-256 of its lines differs from the one it records"
        )
    return body.split("\n")


def _load_bpe(cls, path: str | Path) -> "BPETokenizer":
    path = Path(path)
    lines = _checked_lines(path)
    fields: dict = {"pattern": None, "bytes": None, "merges": {}, "special": {}}
    counts = {}
    for number, line in enumerate(lines[1:], start=2):
        key, _, rest = line.partition(" ")
        try:
            if key in ("merges", "specials"):
                counts[key] = check_id(int(rest), f"the {key} count")
            elif key == "pattern":
                fields["pattern"] = json.loads(rest)
            elif key == "bytes":
                fields["bytes"] = [int(x) for x in rest.split()]
            elif key == "special":
                i, _, token = rest.partition(" ")
                fields["special"][json.loads(token)] = int(i)
            else:  # a merge: "left right new_id  # the bytes it makes"
                a, b, i = (int(x) for x in line.split("#", 1)[0].split())
                fields["merges"][(a, b)] = i
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"{path}, line {number}: cannot read {line[:60]!r} ({error})"
            ) from None
    found = {"merges": len(fields["merges"]), "specials": len(fields["special"])}
    if counts != found:
        raise ValueError(f"{path}: its header counts {counts} differ from what it holds {found}")
    try:
        return cls(fields["merges"], fields["pattern"], fields["special"], fields["bytes"])
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} is not a consistent tokenizer: {error}") from None


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from bytes to printable characters (printable Latin-1 bytes map to themselves)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = iter(range(256, 512))
    return {b: chr(b if b in printable else next(extra)) for b in range(256)}


def _from_merges(
    cls, vocab: dict[bytes, int], merges, pattern: str, special_tokens
) -> "BPETokenizer":
    if not isinstance(vocab, dict):
        raise TypeError(f"vocab must be a dict {{bytes: id}}, got {type(vocab).__name__}")
    missing = [b for b in range(256) if bytes([b]) not in vocab]
    if missing:
        raise ValueError(f"vocab must hold all 256 single bytes; missing {missing[:5]}")
    pairs = {}
    for left, right in merges:
        if left not in vocab or right not in vocab or left + right not in vocab:
            raise ValueError(f"merge {left!r} + {right!r} uses or makes a token missing from vocab")
        pairs[(vocab[left], vocab[right])] = vocab[left + right]
    made = {*pairs.values(), *(vocab[bytes([b])] for b in range(256))}
    unused = sorted(token for token, i in vocab.items() if i not in made)
    if unused:
        raise ValueError(f"vocab has {len(unused)} tokens no merge makes, e.g. {unused[:3]}")
    return cls(pairs, pattern, special_tokens, [vocab[bytes([b])] for b in range(256)])


def _hf_pattern(steps: list[dict]) -> str:
    """The pre-split pattern of a byte-level ``tokenizer.json``'s pre-tokenizer steps (GPT-2's,
    or a ``Split`` regex)."""
    split = [
        s["pattern"]["Regex"]
        for s in steps
        if s.get("type") == "Split" and "Regex" in s.get("pattern", {})
    ]
    byte_level = [s for s in steps if s.get("type") == "ByteLevel"]
    if not byte_level or any(s.get("add_prefix_space") for s in byte_level):
        raise ValueError("only byte-level BPE without add_prefix_space is supported")
    if split:
        return split[0]
    return GPT2_SPLIT_PATTERN if byte_level[0].get("use_regex", True) else r"[\s\S]+"


def _from_hf(cls, path: str | Path) -> "BPETokenizer":
    """Read ``tokenizer.json``, or ``vocab.json`` + ``merges.txt``, from the folder ``path``.

    Tokens of the vocabulary that are neither a byte nor made by a merge (``<|endoftext|>``),
    and the added tokens of ``tokenizer.json``, become special tokens. A file that is not what
    Hugging Face writes raises a ``ValueError`` naming it (and the line, in ``merges.txt``).
    """
    folder, to_byte = hf_tokenizer_files(path), {c: b for b, c in _bytes_to_unicode().items()}
    if (folder / "tokenizer.json").is_file():
        source = folder / "tokenizer.json"
        names, merges, added, steps = read_tokenizer_json(source)  # checked types
    else:
        source = f"{folder / 'vocab.json'} with merges.txt"
        names, merges = (
            read_vocab_json(folder / "vocab.json"),
            read_merges_txt(folder / "merges.txt"),
        )
        added, steps = {}, None

    def as_bytes(name: str) -> bytes:
        if not all(c in to_byte for c in name):
            raise ValueError(f"token {name!r} is not written in GPT-2's byte alphabet")
        return bytes(to_byte[c] for c in name)

    made = set(to_byte) | {a + b for a, b in merges}
    try:
        pattern = GPT2_SPLIT_PATTERN if steps is None else _hf_pattern(steps)
        vocab = {as_bytes(n): i for n, i in names.items() if n in made and n not in added}
        specials = {**{n: i for n, i in names.items() if n not in made}, **added}
        pairs = [(as_bytes(a), as_bytes(b)) for a, b in merges]
        return _from_merges(cls, vocab, pairs, pattern, specials)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{source} is not a byte-level BPE tokenizer we can read: {error}"
        ) from None


__all__ = [
    "SimpleTokenizer",
    "pair_counts",
    "merge_pair",
    "ByteBPE",
    "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN",
    "RegexBPE",
    "SpecialBPE",
    "BPETokenizer",
    "FILE_MAGIC",
]
