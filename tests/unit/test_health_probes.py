"""Probe parsing without sockets: HLS playlists (master -> variant), the FLV reader's bounds, ffprobe results."""

from __future__ import annotations

import pytest

from relayd.health.ffprobe import Run, command, error_kind, judge
from relayd.health.flv import FlvReader
from relayd.health.hls import Position, Variant, compare, read_playlist
from relayd.health.http import ProbeFailed
from relayd.health.observations import Advanced, ProbeError, ProbeErrorKind, Same

URL = "https://cdn.example.com/live/news.m3u8?token=abc"
MEDIA = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:41
#EXTINF:2.000,
seg41.ts
#EXTINF:2.000,
seg42.ts
"""
MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720
hd/index.m3u8?token=abc
#EXT-X-STREAM-INF:BANDWIDTH=500000
sd/index.m3u8
"""


def test_media_playlist_position() -> None:
    assert read_playlist(MEDIA, URL) == Position("41/seg42.ts", ended=False)
    assert read_playlist(MEDIA + "#EXT-X-ENDLIST\n", URL).ended
    tokened = MEDIA.replace("seg42.ts", "seg42.ts?token=s3cr3t")
    assert read_playlist(tokened, URL) == Position("41/seg42.ts", ended=False)


def test_a_live_playlist_without_segments_yet_is_a_position() -> None:
    empty = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
    assert read_playlist(empty, URL) == Position("0/", ended=False)


def test_master_playlist_leads_to_its_first_variant() -> None:
    assert read_playlist(MASTER, URL) == Variant("https://cdn.example.com/live/hd/index.m3u8?token=abc")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<html>403 Forbidden</html>", "no #EXTM3U header"),
        ("#EXTM3U\n#EXTINF:abc,\nseg.ts\n", "bad HLS playlist"),
        ("#EXTM3U\n#EXT-X-VERSION:3\n", "not a media playlist"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", "lists no variant"),
    ],
)
def test_garbage_is_a_parse_error(text: str, reason: str) -> None:
    with pytest.raises(ProbeFailed) as caught:
        read_playlist(text, URL)
    assert caught.value.error.kind is ProbeErrorKind.PARSE
    assert reason in caught.value.error.message


def test_compare_needs_a_baseline_and_an_open_playlist() -> None:
    assert compare(Position("41/a.ts", ended=False), None) == Same("41/a.ts")
    assert compare(Position("42/b.ts", ended=False), "41/a.ts") == Advanced("42/b.ts")
    assert compare(Position("41/a.ts", ended=False), "41/a.ts") == Same("41/a.ts")
    assert compare(Position("42/b.ts", ended=True), "41/a.ts") == Same("42/b.ts")


def test_flv_reader_stops_at_its_bound() -> None:
    reader = FlvReader(max_bytes=100)
    reader.feed(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")
    assert (reader.media_bytes, reader.wanted()) == (0, 100)
    reader.feed(b"x" * 70)
    assert reader.wanted() == 30 and not reader.full
    reader.feed(b"y" * 5000)
    assert reader.media_bytes == 100 and reader.full and reader.wanted() == 0


def test_flv_reader_checks_the_signature_even_when_split() -> None:
    reader = FlvReader(max_bytes=10)
    reader.feed(b"F")
    reader.feed(b"L")
    with pytest.raises(ProbeFailed, match="no FLV signature"):
        reader.feed(b"X\x01")
    with pytest.raises(ProbeFailed):
        FlvReader(max_bytes=10).feed(b"<html>")


URL_RTMP = "rtmp://play.example.com/live/news?token=s3cr3t"


def test_ffprobe_results() -> None:
    assert judge(Run(0, ["0.040", "0.080"], ""), URL_RTMP, 5) == Advanced("0.080")
    assert judge(Run(0, [], ""), URL_RTMP, 5) == Same("no packets")
    assert judge(Run(None, ["0.040"], ""), URL_RTMP, 5) == Same("stopped after 1 packets")
    assert judge(Run(None, [], ""), URL_RTMP, 5).kind is ProbeErrorKind.TIMEOUT  # type: ignore[union-attr]
    failed = judge(Run(1, [], f"{URL_RTMP}: Connection refused\n"), URL_RTMP, 5)
    assert failed == ProbeError(
        ProbeErrorKind.CONNECT, "ffprobe: rtmp://play.example.com/live/news: Connection refused"
    )
    assert command("ffprobe", URL_RTMP, 8)[-1] == URL_RTMP


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("Failed to resolve hostname play.example.com: Name or service not known", ProbeErrorKind.DNS),
        ("Server returned 403 Forbidden (access denied)", ProbeErrorKind.HTTP_STATUS),
        ("TLS handshake failed", ProbeErrorKind.TLS),
        ("Invalid data found when processing input", ProbeErrorKind.PARSE),
        ("something else entirely", ProbeErrorKind.PROGRAM),
    ],
)
def test_ffprobe_error_kinds(stderr: str, kind: ProbeErrorKind) -> None:
    assert error_kind(stderr) is kind
