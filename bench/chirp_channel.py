#!/usr/bin/env python3
"""Side-by-side benchmark of fazt chirp, ggwave and minimodem on the same channels.

Every modem's sound goes through the same simulated channels, then its own
decoder. "noise only": silence around the message and white noise at an SNR.
"room": echo 4 ms at -10 dB -> sender clock 0.5% fast and 48 -> 44.1 kHz (sox `speed`,
  `rate`) -> 1.3 s / 0.7 s of silence -> white noise at an SNR -> clipping at 70%
  of the peak. SNR: mean signal power against white noise over the full band of
  the recording (0..22 kHz). "reverb": a living room's reverberation (synthetic
  impulse response, RT60 0.4 s, direct-to-reverberant ratio +6 dB, about 30 cm
  from the speaker; the same model as the Rust tests' channel) then noise, at 48
  kHz with no clock offset. "clean" skips the channel entirely.

Reports per modem: payload bytes per second of airtime (payload / length of the
modem's own output) and the share of trials whose exact payload came back.
Usage: chirp_channel.py FAZT_BINARY [--trials N] [--size BYTES] [--snrs 20,15,...]
Needs numpy, sox, the PyPI `ggwave` package and Debian's `minimodem`.
"""

import argparse
import os
import random
import string
import subprocess
import sys
import tempfile
import wave

import numpy as np

RATE_TX = 48_000
RATE_RX = 44_100


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2, path
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        ch = w.getnchannels()
        if ch > 1:
            data = data.reshape(-1, ch).mean(axis=1)
        return data, w.getframerate()


def write_wav(path, samples, rate):
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def noise_only(samples, rate, snr_db, seed, tmp):
    """White noise and silence padding only, at the sender's rate and clock."""
    rng = np.random.default_rng(seed)
    power = float(np.mean(samples.astype(np.float64) ** 2))
    y = np.concatenate([np.zeros(int(1.3 * rate), np.float32), samples, np.zeros(int(0.7 * rate), np.float32)])
    y = y + rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), y.shape).astype(np.float32)
    return y / max(1e-9, float(np.abs(y).max())) * 0.9, rate


def room(samples, rate, snr_db, seed, tmp):
    """The simulated room; returns (samples, rate)."""
    rng = np.random.default_rng(seed)
    d = int(0.004 * rate)
    echoed = np.concatenate([samples, np.zeros(d, np.float32)])
    echoed[d:] += 0.3 * samples
    src, dst = os.path.join(tmp, "room_in.wav"), os.path.join(tmp, "room_out.wav")
    # sox writes 16-bit; keep headroom so the echo does not clip before the noise.
    peak = max(1e-9, float(np.abs(echoed).max()))
    write_wav(src, echoed / peak * 0.9, rate)
    subprocess.run(["sox", src, "-r", str(RATE_RX), dst, "speed", "1.005"], check=True)
    y, out_rate = read_wav(dst)
    power = float(np.mean(y.astype(np.float64) ** 2))
    y = np.concatenate([np.zeros(int(1.3 * out_rate), np.float32), y, np.zeros(int(0.7 * out_rate), np.float32)])
    sigma = np.sqrt(power / 10 ** (snr_db / 10))
    y = y + rng.normal(0.0, sigma, y.shape).astype(np.float32)
    level = 0.7 * float(np.abs(y).max())
    y = np.clip(y, -level, level)
    # Normalise so the 16-bit file uses its range, as a recorder's gain would.
    return y / max(1e-9, float(np.abs(y).max())) * 0.9, out_rate


def impulse_response(rate, seed, rt60=0.4, drr_db=6.0):
    """Direct sound, five early reflections (2.5 to 24 ms), a decaying noise tail."""
    rng = np.random.default_rng(seed + 7)
    n = int(rt60 * rate)
    h = np.zeros(n, np.float64)
    for ms, gain in [(2.5, 0.6), (6.0, 0.45), (11.0, 0.35), (17.0, 0.3), (24.0, 0.25)]:
        h[int(ms * 1e-3 * rate)] += gain * rng.choice([-1.0, 1.0])
    start = int(0.005 * rate)
    t = np.arange(n - start)
    h[start:] += 0.1 * rng.normal(size=n - start) * np.exp(-6.9 * t / (rt60 * rate))
    h[1:] *= np.sqrt(10 ** (-drr_db / 10) / np.sum(h[1:] ** 2))
    h[0] = 1.0
    return h


def reverb(samples, rate, snr_db, seed, tmp):
    """A reverberant room, then noise_only's padding and noise."""
    h = impulse_response(rate, seed)
    n = 1 << int(np.ceil(np.log2(len(samples) + len(h))))
    y = np.fft.irfft(np.fft.rfft(samples, n) * np.fft.rfft(h, n), n)[:len(samples) + len(h) - 1]
    return noise_only(y.astype(np.float32), rate, snr_db, seed, tmp)


class Fazt:
    def __init__(self, binary, mode):
        self.binary, self.mode, self.name = binary, mode, f"fazt-{mode}"

    def encode(self, payload, tmp):
        out = os.path.join(tmp, "tx.wav")
        subprocess.run([self.binary, "chirp", "encode", "-", "-o", out, "--mode", self.mode, "--rate", str(RATE_TX)],
                       input=payload, check=True, capture_output=True)
        return read_wav(out)

    def decode(self, samples, rate, payload, tmp):
        path = os.path.join(tmp, "rx.wav")
        write_wav(path, samples, rate)
        r = subprocess.run([self.binary, "chirp", "decode", path], capture_output=True)
        return r.returncode == 0 and r.stdout == payload


class GGWave:
    NAMES = {0: "normal", 1: "fast", 2: "fastest"}

    def __init__(self, protocol):
        import ggwave
        ggwave.disableLog()
        self.gg, self.protocol, self.name = ggwave, protocol, f"ggwave-{self.NAMES[protocol]}"

    def encode(self, payload, tmp):
        w = self.gg.encode(payload.decode(), protocolId=self.protocol, volume=50)
        return np.frombuffer(w, dtype=np.float32).copy(), RATE_TX

    def decode(self, samples, rate, payload, tmp):
        params = self.gg.getDefaultParameters()
        params["sampleRateInp"] = float(rate)
        inst = self.gg.init(params)
        try:
            x = samples.astype(np.float32)
            step = 1024
            for i in range(0, len(x), step):
                res = self.gg.decode(inst, x[i:i + step].tobytes())
                if res is not None:
                    return res == payload
            return False
        finally:
            self.gg.free(inst)


class Minimodem:
    name = "minimodem-1200"

    def encode(self, payload, tmp):
        out = os.path.join(tmp, "tx.wav")
        subprocess.run(["minimodem", "--tx", "1200", "-R", str(RATE_TX), "-f", out], input=payload, check=True,
                       capture_output=True)
        return read_wav(out)

    def decode(self, samples, rate, payload, tmp):
        path = os.path.join(tmp, "rx.wav")
        write_wav(path, samples, rate)
        r = subprocess.run(["minimodem", "--rx", "1200", "-q", "-f", path], capture_output=True)
        # minimodem has no framing or checksum and prints what noise decodes to as well:
        # count it as a success when the payload appears anywhere (lenient to it).
        return payload in r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fazt")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--snrs", default="20,15,10,5,0,-5")
    ap.add_argument("--channels", default="noise,room,reverb", help="which of noise,room,reverb to run")
    args = ap.parse_args()
    snrs = [float(s) for s in args.snrs.split(",")]
    modems = [Fazt(args.fazt, m) for m in ("robust", "standard", "fast")]
    try:
        modems += [GGWave(p) for p in (0, 1, 2)]
    except ImportError:
        print("ggwave not installed (pip install ggwave): skipped", file=sys.stderr)
    modems.append(Minimodem())
    cols = ["clean"] + [f"{s:g}dB" for s in snrs]
    channels = [("noise only (white noise + silence, 48 kHz, no clock offset)", noise_only),
                ("room (echo 4 ms -10 dB, sender clock +0.5%, 48->44.1 kHz, clip 70%, noise)", room),
                ("reverb (living room RT60 0.4 s, direct-to-reverberant +6 dB, 48 kHz, noise)", reverb)]
    wanted = args.channels.split(",")
    channels = [c for c, key in zip(channels, ("noise", "room", "reverb")) if key in wanted]
    print(f"payload {args.size} B, {args.trials} trials per cell; success rate per SNR")
    with tempfile.TemporaryDirectory() as tmp:
        for title, channel in channels:
            print(f"\n{title}")
            print(f"{'modem':<16}{'B/s':>7}  " + "".join(f"{c:>7}" for c in cols))
            for m in modems:
                rates, airtime = [], []
                for ci, col in enumerate(cols):
                    ok = 0
                    for t in range(args.trials):
                        rnd = random.Random(t * 1000 + args.size)
                        payload = "".join(rnd.choice(string.ascii_letters + string.digits)
                                          for _ in range(args.size)).encode()
                        tx, rate = m.encode(payload, tmp)
                        airtime.append(len(tx) / rate)
                        if col == "clean":
                            rx, rx_rate = tx, rate
                        else:
                            rx, rx_rate = channel(tx, rate, snrs[ci - 1], t, tmp)
                        ok += bool(m.decode(rx, rx_rate, payload, tmp))
                    rates.append(100.0 * ok / args.trials)
                bps = args.size / (sum(airtime) / len(airtime))
                print(f"{m.name:<16}{bps:>7.1f}  " + "".join(f"{r:>6.0f}%" for r in rates), flush=True)

if __name__ == "__main__":
    main()
