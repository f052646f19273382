#!/usr/bin/env python3
"""Writes small hostile input files ("bombs") into a folder given on the command line, for the
measurements in docs/LIMITS.md. Each is tiny on disk and claims (or inflates to) far more:

  jpeg-65500.jpg         a baseline JPEG whose header claims 65500x65500 (about 200 bytes)
  png-20000.png          a grey PNG of 20000x20000 zeros, deflated (about 400 KB)
  png-at-limit.png       an RGBA PNG of 7071x7071 (just under 50 megapixels, the default
                         limit; RGBA costs the most bytes a pixel), to measure what an
                         accepted picture at the limit costs
  idx-bomb-idx3-ubyte.gz a gzip IDX whose header claims 2,800,000 x 28 x 28 and which inflates
                         to that (2.2 GB), about 2 MB
  jpeg-10000-scans.jpg   a progressive 4096x4096 grey JPEG with 10,000 scans (about 400 KB)
  wav-huge-chunk.wav     a WAV whose data chunk claims 4,294,967,280 bytes (1 KB follow)
  wav-rate-1hz.wav       a WAV of 400,000 samples at 1 Hz (resampled to 8 kHz it would be 3.2
                         billion samples)
  webp-16384.webp        a WebP whose VP8X header claims a canvas of 16384x16384 (30 bytes)
  heic-60000.heic        a HEIC whose one picture's ispe property claims 60000x60000 (260
                         bytes: the boxes, and 16 bytes of "coded" data)
  heic-60000-cropped.heic the same, with a clean-aperture (clap) crop to 64x64: what is shown
                         is small, what would be decoded is not
  heic-grid-60000.heic   a HEIC whose primary picture is a grid of one 64x64 tile (ispe 64x64)
                         whose own data claims a canvas of 60000x60000

Every byte is written here: markers, chunks and headers by hand, compressed data with Python's
zlib (Debian's). The JPEGs use Huffman tables of a single code each ("0", one bit), so a
picture of zeros is a few bits a block: the DC scan codes difference 0 per block, each AC scan
one end-of-band run (symbol 0xE0 plus 14 zero bits: 16384 blocks) per 16384 blocks. libjpeg
accepts a repeated AC scan (Ah = 0 again) without a warning, so all 10,000 scans are decoded
unless a limit stops them.

    python3 Tools/make_bombs.py /tmp/bombs        # never inside the repository
"""
import os
import struct
import sys
import zlib


def segment(marker, payload):
    """A JPEG marker segment: 0xFF, marker, big-endian length (including itself), payload."""
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def one_code_table(table_class, table_id, symbol):
    """DHT payload: one Huffman code of length 1 ("0") for `symbol`."""
    counts = bytes([1] + [0] * 15)
    return bytes([table_class << 4 | table_id]) + counts + bytes([symbol])


def flat_quant_table():
    return bytes([0]) + bytes([1] * 64)   # 8-bit precision, table 0, every step 1


class BitWriter:
    """Entropy-coded bits, MSB first, with 0xFF bytes stuffed (0xFF 0x00) and 1-padding."""

    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value, bits):
        for i in range(bits - 1, -1, -1):
            self.acc = self.acc << 1 | (value >> i & 1)
            self.n += 1
            if self.n == 8:
                self._byte(self.acc)
                self.acc = 0
                self.n = 0

    def _byte(self, b):
        self.out.append(b)
        if b == 0xFF:
            self.out.append(0)

    def flush(self):
        if self.n:
            self._byte(self.acc << (8 - self.n) | ((1 << (8 - self.n)) - 1))
            self.acc = 0
            self.n = 0
        return bytes(self.out)


def sof(marker, width, height):
    """SOF payload for one 8-bit grey component, no subsampling, quant table 0."""
    return struct.pack(">BHHB", 8, height, width, 1) + bytes([1, 0x11, 0])


def sos(ss, se, ah, al):
    """SOS payload for the single component, DC and AC table 0."""
    return bytes([1, 1, 0x00, ss, se, ah << 4 | al])


def jpeg_claiming(width, height):
    """A baseline grey JPEG whose header claims width x height and whose data is a few blocks."""
    out = bytearray([0xFF, 0xD8])
    out += segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    out += segment(0xFE, b"Header claims %dx%d; the data is a few blocks." % (width, height))
    out += segment(0xDB, flat_quant_table())
    out += segment(0xC0, sof(0xC0, width, height))
    out += segment(0xC4, one_code_table(0, 0, 0x00) + one_code_table(1, 0, 0x00))
    out += segment(0xDA, sos(0, 63, 0, 0))
    bits = BitWriter()
    for _ in range(64):        # 64 blocks: DC difference 0 ("0"), then end of block ("0")
        bits.put(0, 2)
    out += bits.flush()
    out += bytes([0xFF, 0xD9])
    return bytes(out)


def progressive_jpeg(side, scans):
    """A progressive side x side grey JPEG of zeros: one DC scan, then `scans - 1` AC scans."""
    blocks = ((side + 7) // 8) ** 2
    out = bytearray([0xFF, 0xD8])
    out += segment(0xDB, flat_quant_table())
    out += segment(0xC2, sof(0xC2, side, side))
    out += segment(0xC4, one_code_table(0, 0, 0x00) + one_code_table(1, 0, 0xE0))
    out += segment(0xDA, sos(0, 0, 0, 0))
    bits = BitWriter()
    for _ in range(blocks):
        bits.put(0, 1)         # DC difference category 0
    out += bits.flush()
    assert blocks % 16384 == 0, "the AC runs below cover 16384 blocks each"
    ac = BitWriter()
    for _ in range(blocks // 16384):
        ac.put(0, 1)           # symbol 0xE0: an end-of-band run of 2^14 + (14 extra bits) blocks
        ac.put(0, 14)
    ac_data = ac.flush()
    scan = segment(0xDA, sos(1, 63, 0, 0)) + ac_data
    for _ in range(scans - 1):
        out += scan
    out += bytes([0xFF, 0xD9])
    return bytes(out)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_of_zeros(width, height, colour_type, path):
    """A PNG of zero samples (colour type 0 grey, 2 RGB, 4 grey+alpha or 6 RGBA; 8 bits),
    deflated row by row."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    comp = zlib.compressobj(9)
    row = bytes(1 + width * channels)     # filter byte 0, then zero samples
    parts = []
    for _ in range(height):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    idat = b"".join(parts)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)))
        f.write(png_chunk(b"IDAT", idat))
        f.write(png_chunk(b"IEND", b""))


def idx_gzip_bomb(count, path):
    """gzip of an IDX header claiming count x 28 x 28 bytes, followed by that many zeros."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)   # wbits 31: a gzip wrapper
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">III", count, 28, 28)
    chunk = bytes(1 << 20)
    total = count * 28 * 28
    with open(path, "wb") as f:
        f.write(comp.compress(header))
        left = total
        while left > 0:
            n = min(left, len(chunk))
            f.write(comp.compress(chunk[:n]))
            left -= n
        f.write(comp.flush())


def wav(rate, declared_data, samples):
    """A mono 16-bit PCM WAV at `rate` whose data chunk declares `declared_data` bytes and holds
    `samples` zero samples."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2 & 0xFFFFFFFF, 2, 16)
    data = bytes(2 * samples)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", declared_data) + data
    return b"RIFF" + struct.pack("<I", min(len(body), 0xFFFFFFFF)) + body


def webp_claiming(width, height):
    """RIFF/WEBP with a VP8X chunk alone: flags 0, canvas width - 1 and height - 1 in 24 bits."""
    vp8x = bytes(4) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def box(kind, payload, version=None, flags=0):
    """An ISO base media box: 32-bit size, type, then version and 24-bit flags for a full box."""
    if version is not None:
        payload = bytes([version]) + flags.to_bytes(3, "big") + payload
    return struct.pack(">I", 8 + len(payload)) + kind + payload


HEIC_FTYP = box(b"ftyp", b"heic" + bytes(4) + b"mif1heic")
HEIC_HDLR = box(b"hdlr", bytes(4) + b"pict" + bytes(12) + b"\0", version=0)
# hvcC: version 1, Main profile, level 3.1, 4:2:0, 8 bits, 4-byte NAL lengths, no arrays.
HVCC_NO_PARAMETERS = box(b"hvcC", bytes([1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5D, 0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0, 0, 0x0F, 0]))


def heic_claiming(width, height, crop=None):
    """A HEIF file of one HEVC item whose ispe says width x height: ftyp, meta (hdlr, pitm, iloc,
    iinf, iprp with an hvcC of no parameter sets and the ispe), then 16 bytes of mdat the item
    points at. A reader that trusts ispe allocates width x height pixels before decoding. With
    `crop` (a side), a clap property crops the picture to crop x crop, so the picture shown looks
    small while the one to decode is not."""
    pitm = box(b"pitm", struct.pack(">H", 1), version=0)
    infe = box(b"infe", struct.pack(">HH", 1, 0) + b"hvc1" + b"\0", version=2)
    iinf = box(b"iinf", struct.pack(">H", 1) + infe, version=0)
    ispe = box(b"ispe", struct.pack(">II", width, height), version=0)
    props, assoc = HVCC_NO_PARAMETERS + ispe, [0x81, 0x02]
    if crop:
        props += box(b"clap", struct.pack(">IIIIiIiI", crop, 1, crop, 1, 0, 1, 0, 1))
        assoc.append(0x83)
    ipma = box(b"ipma", struct.pack(">IHB", 1, 1, len(assoc)) + bytes(assoc), version=0)
    iprp = box(b"iprp", box(b"ipco", props) + ipma)
    data = bytes(16)

    def meta(offset):
        iloc = box(b"iloc", bytes([0x44, 0x00]) + struct.pack(">HHHHII", 1, 1, 0, 1, offset, len(data)), version=0)
        return box(b"meta", HEIC_HDLR + pitm + iloc + iinf + iprp, version=0)
    offset = len(HEIC_FTYP) + len(meta(0)) + 8   # the mdat payload, after its own header
    return HEIC_FTYP + meta(offset) + box(b"mdat", data)


def heic_grid_claiming(width, height):
    """A HEIF file whose primary item is a grid of one 64x64 HEVC tile (as heic_claiming's, of no
    coded picture) with a canvas of width x height: the grid's own data (in an idat box) says so,
    while its ispe says 64x64. libheif 1.15 allocates the canvas from the grid's data, capping only
    each side."""
    pitm = box(b"pitm", struct.pack(">H", 2), version=0)
    infe = [box(b"infe", struct.pack(">HH", i, 0) + t + b"\0", version=2) for i, t in ((1, b"hvc1"), (2, b"grid"))]
    iinf = box(b"iinf", struct.pack(">H", 2) + b"".join(infe), version=0)
    iref = box(b"iref", box(b"dimg", struct.pack(">HHH", 2, 1, 1)), version=0)
    ispe = box(b"ispe", struct.pack(">II", 64, 64), version=0)
    # item 1: hvcC and ispe; item 2 (the grid): the same ispe.
    ipma = box(b"ipma", struct.pack(">I", 2) + struct.pack(">HB", 1, 2) + bytes([0x81, 0x02]) + struct.pack(">HB", 2, 1) + bytes([0x02]), version=0)
    iprp = box(b"iprp", box(b"ipco", HVCC_NO_PARAMETERS + ispe) + ipma)
    grid = bytes([0, 1, 0, 0]) + struct.pack(">II", width, height)   # flags 1: 32-bit sides; 1x1 tiles
    idat = box(b"idat", grid)
    data = bytes(16)

    def meta(offset):
        # iloc version 1: item 1 in the file (construction method 0), item 2 in idat (method 1).
        iloc = box(b"iloc", bytes([0x44, 0x00]) + struct.pack(">H", 2)
                   + struct.pack(">HHHHII", 1, 0, 0, 1, offset, len(data))
                   + struct.pack(">HHHHII", 2, 1, 0, 1, 0, len(grid)), version=1)
        return box(b"meta", HEIC_HDLR + pitm + iloc + iinf + iref + iprp + idat, version=0)
    offset = len(HEIC_FTYP) + len(meta(0)) + 8
    return HEIC_FTYP + meta(offset) + box(b"mdat", data)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_bombs.py FOLDER  (a folder outside the repository)")
    out = sys.argv[1]
    repo = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
    if os.path.realpath(out).startswith(repo + os.sep) or os.path.realpath(out) == repo:
        sys.exit("make_bombs.py: write the bombs outside the repository, not into %s" % out)
    os.makedirs(out, exist_ok=True)

    def write(name, data):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)

    write("jpeg-65500.jpg", jpeg_claiming(65500, 65500))
    write("jpeg-10000-scans.jpg", progressive_jpeg(4096, 10000))
    png_of_zeros(20000, 20000, 0, os.path.join(out, "png-20000.png"))
    png_of_zeros(7071, 7071, 6, os.path.join(out, "png-at-limit.png"))
    idx_gzip_bomb(2_800_000, os.path.join(out, "idx-bomb-idx3-ubyte.gz"))
    write("wav-huge-chunk.wav", wav(8000, 0xFFFFFFF0, 512))
    write("wav-rate-1hz.wav", wav(1, 800_000, 400_000))
    write("webp-16384.webp", webp_claiming(16384, 16384))
    write("heic-60000.heic", heic_claiming(60000, 60000))
    write("heic-60000-cropped.heic", heic_claiming(60000, 60000, crop=64))
    write("heic-grid-60000.heic", heic_grid_claiming(60000, 60000))
    for name in sorted(os.listdir(out)):
        print("%-24s %10d bytes" % (name, os.path.getsize(os.path.join(out, name))))


if __name__ == "__main__":
    main()
