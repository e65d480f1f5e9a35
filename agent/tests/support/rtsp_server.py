#!/usr/bin/python3
"""A real RTSP server for the agent's tests: GStreamer's gst-rtsp-server serving a live,
moving H.264 test picture at rtsp://127.0.0.1:PORT/cam. Prints "ready" once it listens.

Usage: rtsp_server.py PORT [VARIANT] [WIDTHxHEIGHT]
Each VARIANT (0, 1, ...) tints the picture differently: the origin stores equal bytes once, so a
server started again must not serve the frames it served before. The picture is 320x240 unless
a size is given (`cargo xtask bench agent` serves 1280x720). With RTSP_SERVER_CREDENTIALS=user:password
in the environment the stream needs those credentials (Basic), as a camera's does.
Needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0 and the GStreamer plugins (base, good,
ugly for x264enc); run with Debian's /usr/bin/python3, for which PyGObject is installed.
"""
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

# Every element must exist: a missing one makes each DESCRIBE answer 503 with nothing logged.
# The bars scroll 3 px a frame (320 px wide: no picture repeats for 32 s at 10 frames a second).
LAUNCH = (
    "( videotestsrc is-live=true pattern=smpte horizontal-speed=3 "
    "! video/x-raw,width={width},height={height},framerate=10/1 "
    "! videobalance hue={hue:.2f} "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 "
    "! rtph264pay name=pay0 pt=96 )"
)


def main():
    port = sys.argv[1]
    variant = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    width, height = (int(n) for n in (sys.argv[3] if len(sys.argv) > 3 else "320x240").split("x"))
    Gst.init(None)
    for element in ("videotestsrc", "videobalance", "x264enc", "rtph264pay"):
        if Gst.ElementFactory.find(element) is None:
            sys.exit(f"GStreamer element {element} is missing: install the plugin packages")
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        LAUNCH.format(hue=(variant * 0.3) % 2.0 - 1.0, width=width, height=height)
    )
    factory.set_shared(True)
    credentials = os.environ.get("RTSP_SERVER_CREDENTIALS")
    if credentials:
        user, password = credentials.split(":", 1)
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.new_from_string(
                "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
        )
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
