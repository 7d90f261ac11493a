"""Hypothesis strategy of corrupted files, shared by the reader fuzz tests."""
from hypothesis import strategies as st


def corruptions(valid: bytes):
    """Random bytes, truncations of ``valid`` and up to 8 byte flips of it."""
    n = len(valid)
    flips = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1, max_size=8)

    def flip(pairs):
        out = bytearray(valid)
        for i, b in pairs:
            out[i] = b
        return bytes(out)

    return st.one_of(st.binary(max_size=400), st.integers(0, n).map(lambda k: valid[:k]), flips.map(flip))
