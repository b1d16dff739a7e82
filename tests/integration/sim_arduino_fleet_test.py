"""sim_arduino_fleet_test.py - 1,000 arduino devices in one fota-sim
process roll out v1 -> v2 against a scripted server that keeps a window of
at most 100 devices between "image served" and "checked in on v2" (the
others get 304 until a place is free): every device ends on v2, each was
served the image once, the window was never exceeded, and every device's
last check-in reports v2's MD5."""
import os
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_ardserver as ar  # noqa: E402

N, WINDOW = 1000, 100


def main():
    with tempfile.TemporaryDirectory() as tmp:
        img = ar.write_image(os.path.join(tmp, "v2.bin"), "2.0.0", 24000)
        done_md5 = ar.md5(img)
        lock = threading.Lock()
        state = {"in_flight": set(), "done": set(), "served": {}, "peak": 0}

        def handler(r):
            mac = r.get("x-ESP8266-STA-MAC")
            with lock:
                if r.get("x-ESP8266-sketch-md5") == done_md5:
                    state["in_flight"].discard(mac)
                    state["done"].add(mac)
                    return ar.reply(304, reason="Not Modified")
                if mac not in state["in_flight"] and len(state["in_flight"]) >= WINDOW:
                    return ar.reply(304, reason="Not Modified")
                state["in_flight"].add(mac)
                state["peak"] = max(state["peak"], len(state["in_flight"]))
                state["served"][mac] = state["served"].get(mac, 0) + 1
            return ar.reply(200, img, [("x-MD5", done_md5)])
        srv = ar.ArdServer(handler)
        try:
            rc, out, err = ar.run_sim(["--server", "127.0.0.1", "--profile", "arduino", "--devices",
                                       str(N), "--url", srv.url("/v1/arduino/KEY/firmware.bin"),
                                       "--initial-version", "1.0.0", "--upgrade-to", "2.0.0",
                                       "--image-size", "24000", "--checkin-interval", "20",
                                       "--time-scale", "10", "--timeout", "100", "--hold", "4"],
                                      timeout=150)
        finally:
            srv.close()
        assert rc == 0, (rc, out, err[-3000:])
        assert "upgraded:   %d" % N in out, out
        # each device was served the image (again only after a failed try: a
        # loaded host can time a device's read out)
        assert len(state["served"]) == N, len(state["served"])
        assert state["peak"] <= WINDOW, state["peak"]
        assert len(state["done"]) == N, len(state["done"])
    print("ok")


if __name__ == "__main__":
    main()
