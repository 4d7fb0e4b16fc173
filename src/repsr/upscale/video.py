"""Video upscaling through PyAV (FFmpeg bundled in the wheel): decode, batch, upscale, encode.

Why this shape: Real-ESRGAN users' complaints about video are huge temporary frame folders, lost
or drifting audio, and no batching. Here frames stream from the decoder straight into batches
(:func:`frames_per_call`), through the network and into the encoder (decoding and encoding on their own
threads, overlapping the network) -- nothing touches the disk but
the output file (written to a hidden temporary name, then renamed). Every output frame keeps its
source timestamp (same time base), so audio stays in sync; the audio stream is copied packet by
packet without re-encoding. Video is encoded with libx264 (VP9 for ``.webm``), yuv420p, CRF 18.
yuv420p needs even sides: an odd output side loses its last pixel row/column.

Memory is a few frames, not the clip: what used to grow with it were x264's default 40-frame
rate-control lookahead (40 full-size frames waiting inside the encoder: 0.4 GB at 2560x1440) and
the network's activations for 4 frames per call (~1 GB at 640x360 x4); see docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Literal, TypeAlias

import av
import numpy as np
import torch
from rich.progress import Progress

from repsr.atomic import why_unwritable
from repsr.errors import OutputError, UserError
from repsr.imageio import quantize, resize_to
from repsr.inference import Upscaler, as_upscaler, upscale_tiled
from repsr.progress import Tick, subtask
from repsr.upscale.pipeline import pipelined
from repsr.upscale.plan import UpscaleOptions

LOOKAHEAD = 10  # x264 rc-lookahead, frames: each holds a full output frame inside the encoder (default 40)
CALL_PIXELS = 1 << 18  # LR pixels per network call when --batch is not given: activations grow with them


def frames_per_call(width: int, height: int, batch: int | None) -> int:
    """Frames per network call: ``batch`` when the user chose one, else as many as fit ``CALL_PIXELS`` (1 to 8).

    Batching pays for small frames (per-call overhead, a GPU kept busy) and costs memory for large
    ones: an M4C16 x4 net's activations are ~1 KB per LR pixel, so four 640x360 frames per call
    took ~1 GB (one frame ~0.3 GB), and the run's peak fell from 1.81 GB to 1.03 GB with one.
    """
    if batch is not None:
        return batch
    return max(1, min(8, CALL_PIXELS // max(1, width * height)))


def _codec_for(path: Path) -> Literal["libvpx-vp9", "libx264"]:
    return "libvpx-vp9" if path.suffix.lower() == ".webm" else "libx264"


def _output_sizes(width: int, height: int, factor: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """(upscaled size, encoded size): the second rounded down to even sides for yuv420p."""
    w, h = max(2, round(width * factor)), max(2, round(height * factor))
    return (w, h), (w - w % 2, h - h % 2)


def _upscale_frames(upscaler: Upscaler, rgb: np.ndarray, sizes: tuple[tuple[int, int], ...],
                    opts: UpscaleOptions) -> list[np.ndarray]:
    """A batch of decoded uint8 RGB frames (N, H, W, 3) -> uint8 RGB arrays of the encoded size.

    An engine whose compile per input shape is costly (it says ``compiles_per_shape``: torch.compile)
    gets full batches only (the last one padded with copies of its last frame, whose outputs are
    dropped): a smaller batch would cost a second compile.
    """
    (full, (w, h)) = sizes
    count = len(rgb)
    batch = frames_per_call(rgb.shape[2], rgb.shape[1], opts.batch)
    if getattr(upscaler, "compiles_per_shape", False) and count < batch:
        rgb = np.concatenate([rgb, np.repeat(rgb[-1:], batch - count, axis=0)])
    lr = torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div_(255.0)
    sr = upscale_tiled(upscaler, lr, opts.tile, opts.tile_pad).permute(0, 2, 3, 1).numpy()[:count]
    out = []
    for img in sr:  # one frame's float temporaries at a time
        if (img.shape[1], img.shape[0]) != full:
            img = resize_to(np.ascontiguousarray(img), full)
        out.append(np.ascontiguousarray(quantize(img[:h, :w], 8)))
    return out


def _encode(out: av.container.OutputContainer, stream: av.VideoStream, frames: list[av.VideoFrame],
            images: list[np.ndarray]) -> None:
    for src, img in zip(frames, images, strict=True):
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = src.pts, src.time_base
        out.mux(stream.encode(frame))


def _add_video_stream(out: av.container.OutputContainer, vin: av.VideoStream, target: Path,
                      size: tuple[int, int]) -> av.VideoStream:
    rate = vin.average_rate or vin.guessed_rate or Fraction(25)
    stream = out.add_stream(_codec_for(target), rate=rate)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.time_base = vin.time_base
    x264: dict[str, object] = {"crf": "18", "rc-lookahead": str(LOOKAHEAD)}
    vp9: dict[str, object] = {"crf": "24", "b": "0"}
    stream.options = x264 if _codec_for(target) == "libx264" else vp9
    return stream


# ("audio", packet, None) or ("video", frames, their RGB pixels (N, H, W, 3)); a string: av.Packet is generic
# only in PyAV's stubs
_Unit: TypeAlias = "tuple[str, av.Packet[av.stream.Stream] | list[av.VideoFrame], np.ndarray | None]"


def _units(inp: av.container.InputContainer, vin: av.VideoStream, ain: av.AudioStream | None,
           batch: int | None) -> Iterator[_Unit]:
    """The input in stream order: ("audio", packet, None) and ("video", frames, their RGB pixels) in batches.

    Runs on the pipeline's reader thread, so demuxing, decoding and the YUV -> RGB conversion
    overlap the network.
    """
    pending: list[av.VideoFrame] = []
    batch = frames_per_call(vin.codec_context.width, vin.codec_context.height, batch)
    for packet in inp.demux(*([vin] + ([ain] if ain is not None else []))):
        if ain is not None and packet.stream is ain:
            if packet.dts is not None:
                yield "audio", packet, None
            continue
        for frame in packet.decode():
            assert isinstance(frame, av.VideoFrame)  # audio packets were passed on above
            pending.append(frame)
            if len(pending) >= batch:
                yield "video", pending, np.stack([f.to_ndarray(format="rgb24") for f in pending])
                pending = []
    if pending:
        yield "video", pending, np.stack([f.to_ndarray(format="rgb24") for f in pending])


def _transcode(upscaler: Upscaler, inp: av.container.InputContainer, out: av.container.OutputContainer,
               target: Path, opts: UpscaleOptions, tick: Tick) -> tuple[int, tuple[int, int], tuple[int, int]]:
    """Stream every packet: audio copied, video decoded, batched, upscaled and encoded.

    Three stages (:func:`~repsr.upscale.pipeline.pipelined`): demux + decode on a reader thread, the
    network here, encode + mux on a writer thread; FIFO queues keep audio and video in stream order.
    """
    scale = as_upscaler(upscaler).scale
    vin = inp.streams.video[0]
    ain = inp.streams.audio[0] if inp.streams.audio else None
    size_in = (vin.codec_context.width, vin.codec_context.height)
    sizes = _output_sizes(*size_in, opts.outscale or scale)
    vout = _add_video_stream(out, vin, target, sizes[1])
    aout = out.add_stream_from_template(ain) if ain is not None else None

    def compute(unit: _Unit, _: None) -> list[np.ndarray] | None:
        kind, _payload, rgb = unit
        return None if kind == "audio" or rgb is None else _upscale_frames(upscaler, rgb, sizes, opts)

    def write(unit: _Unit, images: list[np.ndarray] | None) -> int:
        _kind, payload, _ = unit
        if isinstance(payload, av.Packet):  # audio, copied
            assert aout is not None  # there are audio packets only when there is an audio stream
            payload.stream = aout
            out.mux(payload)
            return 0
        assert images is not None  # compute upscales every video unit
        _encode(out, vout, payload, images)
        return len(images)

    count = 0
    # depth 1: at most one batch waits between two stages (each waiting 2560x1440 frame is 11 MB)
    outcomes = pipelined(_units(inp, vin, ain, opts.batch), lambda _: None, compute, write, depth=1)
    with contextlib.closing(outcomes):
        for outcome in outcomes:
            if outcome.error is not None:
                raise outcome.error
            if outcome.result:
                count += outcome.result
                tick(outcome.result)
    out.mux(vout.encode(None))
    return count, size_in, sizes[1]


def upscale_video(upscaler: Upscaler, source: Path, target: Path, opts: UpscaleOptions,
                  progress: Progress | None = None) -> tuple[int, tuple[int, int], tuple[int, int]]:
    """Upscale ``source`` into ``target``; returns (frames, input size, output size).

    A target that cannot be written (read-only place, a path under a regular file) is an
    :class:`~repsr.errors.OutputError` before any frame is decoded.
    """
    tmp = target.with_name(f".{target.stem}.part{target.suffix}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(source)) as inp:
            if not inp.streams.video:
                raise UserError(f"{source}: no video stream")
            total = inp.streams.video[0].frames or None
            try:
                out = av.open(str(tmp), "w")
            except OSError as exc:
                raise OutputError(f"{target}: cannot write ({why_unwritable(exc)})") from None
            with out, subtask(progress, source.name, total, "fps") as tick:
                result = _transcode(upscaler, inp, out, target, opts, tick)
        os.replace(tmp, target)
        return result
    except av.FFmpegError as exc:
        raise UserError(f"{source}: video error ({exc.strerror or type(exc).__name__})") from None
    except OSError as exc:  # creating the folder or renaming the finished file
        raise OutputError(f"{target}: cannot write ({why_unwritable(exc)})") from None
    finally:
        with contextlib.suppress(OSError):  # nothing was created where nothing can be written
            tmp.unlink(missing_ok=True)
