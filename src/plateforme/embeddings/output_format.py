"""What POST /v1/embeddings makes of unit vectors: a dimension, a dtype, an encoding.

- `output_dimension` n <= the native dimension: the first n dimensions, renormalised to unit
  length (Matryoshka-style truncation; e5 was not trained for it, so quality drops faster than
  with models that were, but the vectors stay comparable by cosine).
- `output_dtype`, as Mistral documents them:
  float   float32 values;
  int8    each value v scaled by 127 / max|v| of its vector and rounded, in [-127, 127] (the
          scale is per vector, so cosine similarity is kept up to rounding);
  uint8   the int8 values + 128, in [1, 255];
  binary  one bit per dimension (1 where v > 0), packed 8 per byte, most significant bit first,
          each byte written as a signed int8 by offset binary (byte - 128): n/8 values;
  ubinary the same bytes as uint8 (0..255).
  Dimensions that do not fill the last byte are zero bits.
- `encoding_format`: float (JSON numbers) or base64 of the values' bytes: float32 little-endian
  for float (what the openai SDK decodes), one byte per value for the other dtypes.
"""

import base64
from typing import Literal

import numpy as np

OutputDtype = Literal["float", "int8", "uint8", "binary", "ubinary"]
EncodingFormat = Literal["float", "base64"]


def truncated(vectors: np.ndarray, dimension: int | None) -> np.ndarray:
    """The first `dimension` columns of unit `vectors`, renormalised (all of them when None)."""
    if dimension is None or dimension >= vectors.shape[1]:
        return vectors
    head = vectors[:, :dimension]
    norms = np.linalg.norm(head, axis=1, keepdims=True)
    return (head / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def quantized(vectors: np.ndarray, dtype: OutputDtype) -> np.ndarray:
    """`vectors` (float32, one per row) as `dtype`: float32, int8 or uint8 rows."""
    if dtype == "float":
        return vectors.astype("<f4", copy=False)
    if dtype in ("int8", "uint8"):
        peak = np.abs(vectors).max(axis=1, keepdims=True)
        scaled = np.rint(vectors * (127.0 / np.where(peak > 0, peak, 1.0)))
        ints = np.clip(scaled, -127, 127).astype(np.int16)
        return ints.astype(np.int8) if dtype == "int8" else (ints + 128).astype(np.uint8)
    packed = np.packbits(vectors > 0, axis=1)  # uint8, MSB first, last byte zero-padded
    return packed if dtype == "ubinary" else (packed.astype(np.int16) - 128).astype(np.int8)


def encoded(values: np.ndarray, encoding: EncodingFormat) -> list:
    """Each row as a JSON list of numbers, or as the base64 of its bytes."""
    if encoding == "base64":
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in values]
    return values.tolist()


def output_embeddings(vectors: np.ndarray, dimension: int | None, dtype: OutputDtype,
                      encoding: EncodingFormat) -> list:
    return encoded(quantized(truncated(vectors, dimension), dtype), encoding)
