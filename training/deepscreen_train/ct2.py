"""Read a CTranslate2 model file (`model.bin`) into numpy arrays.

The layout, as CTranslate2 documents and writes it (binary version 6, little endian):
u32 version, string model name, u32 revision, u32 variable count, then per variable: string
name, u8 rank, u32 dims[rank], u8 dtype (0 float32, 1 int8, 2 int16, 3 int32, 4 float16,
5 bfloat16), u32 byte count, raw bytes; then u32 alias count and (alias, target) string pairs.
A string is a u16 length (counting a trailing NUL) followed by its bytes and the NUL.
"""

import struct
import sys

import numpy as np

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string(self):
        n = self.take("H")
        text = self.data[self.pos : self.pos + n - 1].decode("utf-8")
        self.pos += n
        return text

    def raw(self, n):
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def read(path):
    """(model name, {variable name: numpy array}); aliases resolved to their targets."""
    with open(path, "rb") as f:
        r = Reader(f.read())
    version = r.take("I")
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 binary version {version}, expected 6")
    name = r.string()
    r.take("I")  # revision
    variables = {}
    for _ in range(r.take("I")):
        var = r.string()
        rank = r.take("B")
        dims = [r.take("I") for _ in range(rank)]
        dtype = r.take("B")
        nbytes = r.take("I")
        raw = r.raw(nbytes)
        if dtype == 5:  # bfloat16: the high half of a float32
            bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            array = bits.view(np.float32)
        elif dtype in DTYPES:
            array = np.frombuffer(raw, dtype=DTYPES[dtype])
        else:
            raise ValueError(f"{path}: {var} has unknown dtype id {dtype}")
        variables[var] = array.reshape(dims)
    for _ in range(r.take("I")):
        alias, target = r.string(), r.string()
        variables.setdefault(alias, variables[target])
    if r.pos != len(r.data):
        raise ValueError(f"{path}: {len(r.data) - r.pos} trailing bytes")
    return name, variables


if __name__ == "__main__":
    model, variables = read(sys.argv[1])
    print(model, len(variables), "variables")
    for k, v in variables.items():
        if k.startswith("encoder"):
            print(f"  {k} {list(v.shape)} {v.dtype}")
