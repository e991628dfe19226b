"""Remote files (sha256, offline errors) and image readers (PNG, JPEG, DICOM)."""

from __future__ import annotations

import hashlib
import struct
import warnings
import zlib

import numpy as np
import pooch
import pytest
import skimage.io

from chexp.data import remote
from chexp.data.images import (
    ImageQualityWarning,
    box_to_mask,
    crop_resize_mask,
    read_image,
    read_raw,
    to_xrv_range,
)
from chexp.errors import ChecksumError, CorruptFileError, DataUnavailableError, InputRangeError, UnknownNameError


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEXP_DATA_DIR", str(tmp_path))
    return tmp_path


def _put(data_dir, path, content: bytes):
    f = data_dir / "gifsplanation" / path
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(content)
    return f


def test_fetch_returns_local_file_when_checksum_matches(data_dir, monkeypatch):
    monkeypatch.setattr("pooch.retrieve", _no_download)
    f = _put(data_dir, "a/b.txt", b"hello")
    assert remote.fetch("gifsplanation", "a/b.txt", hashlib.sha256(b"hello").hexdigest()) == f


def test_checksum_mismatch_raises_and_file_is_not_used(data_dir, monkeypatch):
    monkeypatch.setattr("pooch.retrieve", _no_download)
    f = _put(data_dir, "x.csv", b"tampered")
    with pytest.raises(ChecksumError) as err:
        remote.fetch("gifsplanation", "x.csv", hashlib.sha256(b"original").hexdigest())
    assert str(f) in str(err.value) and "not used" in str(err.value)
    assert f.read_bytes() == b"tampered"  # chexp never overwrites a file it did not download


def test_missing_file_offline_names_url_and_path(data_dir, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr("pooch.retrieve", offline)
    with pytest.raises(DataUnavailableError) as err:
        remote.fetch("gifsplanation", "trial_record.json.gz", "0" * 64)
    message = str(err.value)
    assert remote.SOURCES["gifsplanation"].url("trial_record.json.gz") in message
    assert str(data_dir / "gifsplanation" / "trial_record.json.gz") in message
    assert not (data_dir / "gifsplanation" / "trial_record.json.gz").exists()


def test_download_with_wrong_checksum_leaves_nothing(data_dir, monkeypatch):
    def bad_download(url, known_hash, fname, path, progressbar):
        (path / fname).write_bytes(b"evil")  # as if pooch had written then refused it
        raise ValueError("SHA256 hash of downloaded file does not match the known hash")

    monkeypatch.setattr("pooch.retrieve", bad_download)
    with pytest.raises(ChecksumError):
        remote.fetch("gifsplanation", "f.bin", "1" * 64)
    assert not (data_dir / "gifsplanation" / "f.bin").exists()


def test_unknown_source_and_missing_hash(data_dir):
    with pytest.raises(UnknownNameError, match="covid-chestxray-dataset"):
        remote.fetch("nih", "x.png", "0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        remote.fetch("gifsplanation", "x.png", "")


def _no_download(*args, **kwargs):
    raise AssertionError("must not download")


def test_shared_data_is_found_through_the_download_code(shared_data, monkeypatch):
    """The offline copies are used through fetch() exactly as a user's download cache."""
    monkeypatch.setenv("CHEXP_DATA_DIR", str(shared_data))
    monkeypatch.setattr("pooch.retrieve", _no_download)
    local = shared_data / "gifsplanation" / "trial_record.json.gz"
    digest = pooch.file_hash(local, alg="sha256")
    assert remote.fetch("gifsplanation", "trial_record.json.gz", digest) == local


# --- image readers ------------------------------------------------------------------------

def _ramp(h, w, maxval, dtype):
    ramp = np.linspace(0, maxval, w).round().astype(dtype)
    return np.tile(ramp, (h, 1))


def test_png_8_and_16_bit_round_trip_the_range(tmp_path):
    for maxval, dtype in ((255, np.uint8), (65535, np.uint16)):
        img = _ramp(40, 64, maxval, dtype)
        path = tmp_path / f"img{maxval}.png"
        skimage.io.imsave(path, img, check_contrast=False)
        raw = read_raw(path)
        assert raw.shape == (1, 40, 64) and raw.dtype == np.float32
        assert raw.min() == -1024 and raw.max() == 1024
        np.testing.assert_allclose(raw[0], (2 * img.astype(np.float64) / maxval - 1) * 1024, atol=1e-3)
        out = read_image(path, size=32)  # center crop 40x40 then resize
        assert out.shape == (1, 32, 32) and -1024 <= out.min() < out.max() <= 1024


def test_rgb_png_and_jpeg(tmp_path):
    grey = _ramp(32, 32, 255, np.uint8)
    rgb = np.stack([grey] * 3, axis=-1)
    skimage.io.imsave(tmp_path / "rgb.png", rgb, check_contrast=False)
    expected = (2 * grey.astype(np.float64) / 255 - 1) * 1024
    np.testing.assert_allclose(read_raw(tmp_path / "rgb.png")[0], expected, atol=1e-3)
    skimage.io.imsave(tmp_path / "img.jpg", grey, quality=95, check_contrast=False)
    jpg = read_raw(tmp_path / "img.jpg")[0]
    assert np.abs(jpg - (2 * grey.astype(np.float64) / 255 - 1) * 1024).mean() < 30  # lossy, but the same range


def _with_sbit(png: bytes, bits: int) -> bytes:
    """Insert an sBIT chunk (grey, ``bits`` significant bits) after the IHDR chunk of a PNG."""
    ihdr_end = 8 + 12 + 13
    chunk = struct.pack(">I", 1) + b"sBIT" + bytes([bits])
    chunk += struct.pack(">I", zlib.crc32(b"sBIT" + bytes([bits])))
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def test_12_bit_values_in_a_16_bit_png_are_scaled_by_4095(tmp_path):
    img = _ramp(32, 32, 4095, np.uint16)
    expected = (2 * img.astype(np.float64) / 4095 - 1) * 1024
    plain = tmp_path / "twelve.png"
    skimage.io.imsave(plain, img, check_contrast=False)
    with pytest.warns(ImageQualityWarning, match="12-bit"):
        raw = read_raw(plain)[0]  # read as 16-bit this was -1024..-896, nearly black
    np.testing.assert_allclose(raw, expected, atol=1e-3)
    tagged = tmp_path / "sbit.png"
    tagged.write_bytes(_with_sbit(plain.read_bytes(), 12))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageQualityWarning)  # the sBIT chunk says it: no warning
        np.testing.assert_allclose(read_raw(tagged)[0], expected, atol=1e-3)
    # sBIT with samples scaled to 16 bits (what the PNG spec asks): read as 16-bit
    shifted = tmp_path / "shifted.png"
    skimage.io.imsave(shifted, (img << 4) | (img >> 8), check_contrast=False)
    shifted.write_bytes(_with_sbit(shifted.read_bytes(), 12))
    np.testing.assert_allclose(read_raw(shifted)[0], expected, atol=1.0)


def test_palette_grey_alpha_and_rgba_pngs(tmp_path):
    from PIL import Image

    grey = _ramp(24, 24, 255, np.uint8)
    expected = (2 * grey.astype(np.float64) / 255 - 1) * 1024
    Image.fromarray(grey).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(np.stack([grey, np.full_like(grey, 255)], -1), "LA").save(tmp_path / "la.png")
    Image.fromarray(np.stack([grey] * 3 + [np.full_like(grey, 255)], -1), "RGBA").save(tmp_path / "rgba.png")
    for name in ("palette.png", "la.png", "rgba.png"):
        np.testing.assert_allclose(read_raw(tmp_path / name)[0], expected, atol=1e-3, err_msg=name)


def test_small_and_constant_images_warn(tmp_path):
    skimage.io.imsave(tmp_path / "tiny.png", _ramp(8, 8, 255, np.uint8), check_contrast=False)
    with pytest.warns(ImageQualityWarning, match="8x8, smaller than the model's 224x224"):
        assert read_image(tmp_path / "tiny.png", size=224).shape == (1, 224, 224)
    skimage.io.imsave(tmp_path / "flat.png", np.full((32, 32), 7, np.uint8), check_contrast=False)
    with pytest.warns(ImageQualityWarning, match="constant image"):
        read_image(tmp_path / "flat.png", size=32)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.png", b""),
        ("notes.png", b"patient list\nnot an image at all\n"),
        ("truncated.png", None),
        ("truncated.dcm", None),
    ],
)
def test_empty_truncated_and_non_image_files_name_the_file(tmp_path, name, content):
    path = tmp_path / name
    if content is None and name.endswith(".png"):
        skimage.io.imsave(path, _ramp(64, 64, 255, np.uint8), check_contrast=False)
        content = path.read_bytes()[:80]
    elif content is None:
        _write_dicom(path, _ramp(16, 16, 4095, np.uint16), 12, "MONOCHROME2")
        content = path.read_bytes()[:-200]
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match=name) as info:
        read_image(path)
    assert "\n" not in str(info.value)


def _write_dicom(path, pixels: np.ndarray, bits_stored: int, photometric: str, preamble: bool = True, **extra):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    for key, value in extra.items():
        setattr(ds, key, value)
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:  # the bare data set: no preamble, no DICM marker, no file meta
        del ds.file_meta
        ds.save_as(path, implicit_vr=True, little_endian=True)
        assert path.read_bytes()[128:132] != b"DICM"


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_12_bit(tmp_path, photometric):
    pixels = _ramp(16, 16, 4095, np.uint16)
    path = tmp_path / "img.dcm"
    _write_dicom(path, pixels, 12, photometric)
    raw = read_raw(path)[0]
    expected = (2 * pixels.astype(np.float64) / 4095 - 1) * 1024
    if photometric == "MONOCHROME1":  # inverted: high values are dark
        expected = -expected
    np.testing.assert_allclose(raw, expected, atol=1.0)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_without_preamble(tmp_path, photometric):
    pixels = _ramp(16, 16, 4095, np.uint16)
    path = tmp_path / "bare"
    _write_dicom(path, pixels, 12, photometric, preamble=False)
    expected = (2 * pixels.astype(np.float64) / 4095 - 1) * 1024
    np.testing.assert_allclose(read_raw(path)[0], -expected if photometric == "MONOCHROME1" else expected, atol=1.0)


def test_dicom_window_is_applied(tmp_path):
    pixels = _ramp(16, 16, 4095, np.uint16)
    path = tmp_path / "window.dcm"
    _write_dicom(path, pixels, 12, "MONOCHROME2", WindowCenter=2048, WindowWidth=1025)
    raw = read_raw(path)[0]
    values = pixels.astype(np.float64)
    expected = (2 * np.clip((values - 2047.5) / 1024 + 0.5, 0, 1) - 1) * 1024
    np.testing.assert_allclose(raw, expected, atol=1.0)
    assert raw.min() == -1024 and raw.max() == 1024 and (raw == -1024).mean() > 0.3


def test_dicom_voi_lut_sequence_is_applied(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    pixels = _ramp(16, 16, 4095, np.uint16)
    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 16]  # 4096 entries from 0, 16-bit output
    lut.add_new(0x00283006, "US", (65535 - np.arange(4096) * 16).tolist())  # LUT Data: an inverting LUT
    path = tmp_path / "lut.dcm"
    _write_dicom(path, pixels, 12, "MONOCHROME2", VOILUTSequence=Sequence([lut]))
    expected = (2 * (65535 - pixels.astype(np.float64) * 16) / 65535 - 1) * 1024
    np.testing.assert_allclose(read_raw(path)[0], expected, atol=1.0)


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(CorruptFileError, match="broken.png"):
        read_image(bad)
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "absent.png")
    with pytest.raises(InputRangeError):
        to_xrv_range(np.array([0, 300]), 255)


def test_masks_and_boxes_follow_the_image_crop_and_resize():
    # a 100 x 200 image is center-cropped to columns 50..149, then resized 100 -> 50
    mask = np.zeros((100, 200), dtype=bool)
    mask[10:30, 60:80] = True
    out = crop_resize_mask(mask, 50)
    assert out.shape == (50, 50)
    ys, xs = np.nonzero(out)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (5, 14, 5, 14)
    box = box_to_mask((60, 10, 20, 20), (100, 200), 50)
    assert np.array_equal(box, out)
