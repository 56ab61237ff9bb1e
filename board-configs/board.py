#!/usr/bin/env python3
"""Reads and checks board configs (board-configs/<board>.toml).

    board-configs/board.py check [FILE...]    check every config (or the given files)
    board-configs/board.py get BOARD KEY       print one value (lists: one item per line)

A config with an unknown key, a missing field or a value of the wrong type is refused
with one line per problem, naming the file and the key. The schema below is the only
description of the format: adding a board is adding a file; adding a field is adding a
line here.
"""
import os
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))

# kind: pi  = SD-card image for a Raspberry Pi (boot firmware, kernel, A/B root, data)
#       vm  = the same image for QEMU's `virt` machine (no Pi firmware needed)
#       vps = a tarball with the binary, a systemd unit and an install script
KINDS = ("pi", "vm", "vps")
TARGETS = {
    "aarch64-unknown-linux-gnu": "arm64",
    "armv7-unknown-linux-gnueabihf": "armhf",
    "x86_64-unknown-linux-gnu": "amd64",
}

# key: (type, help). Nested tables are dicts. Every key is required unless listed in OPTIONAL.
COMMON = {
    "name": (str, "board name; must equal the file name without .toml"),
    "description": (str, "one line for humans"),
    "kind": (str, "one of: " + ", ".join(KINDS)),
    "target": (str, "Rust target triple, one of: " + ", ".join(TARGETS)),
    "features": (list, "cargo features of the fazt crate, e.g. [\"audio-alsa\"]"),
    "memory": {
        "ram_mb": (int, "RAM of the smallest model this config covers (MiB)"),
        "fazt_budget_mb": (int, "RSS fazt should stay under on this board (MiB)"),
    },
}
IMAGE = {
    "kernel": {
        "package": (str, "Debian package of the kernel, e.g. linux-image-arm64"),
        "modules": (list, "kernel modules the initramfs loads (dependencies are added)"),
        "cmdline": (str, "kernel command line: console and friends"),
    },
    "image": {
        "disk": (list, "block devices the init looks for, in order (e.g. /dev/mmcblk0)"),
        "total_mb": (int, "image size (MiB); a power of two for QEMU's raspi machines"),
        "boot_mb": (int, "FAT boot partition (MiB)"),
        "root_mb": (int, "each of the two root slots A and B (MiB)"),
    },
}
PI = {
    "firmware": {
        "packages": (list, "Debian packages of the boot firmware, e.g. raspi-firmware"),
        "files": (list, "files of /usr/lib/raspi-firmware copied to the boot partition"),
        "device_trees": (list, "device tree blobs (.dtb) copied to the boot partition"),
        "config_txt": (str, "extra lines of config.txt for this board"),
    },
}
# WiFi (pi kind only, optional): the firmware of the board's WiFi chip goes into the
# initramfs, wpa_supplicant and its libraries into the root slot (image-builder/build).
WIFI = {
    "wifi": {
        "packages": (list, "Debian packages whose lib/firmware holds the chip's firmware, e.g. firmware-brcm80211"),
        "firmware": (list, "files under lib/firmware of those packages, copied into the initramfs"),
        "modules": (list, "kernel modules of the WiFi chip (dependencies are added)"),
    },
}
OPTIONAL = {"features", "wifi"}


def schema_for(kind):
    s = dict(COMMON)
    if kind in ("pi", "vm"):
        s.update(IMAGE)
    if kind == "pi":
        s.update(PI)
        s.update(WIFI)
    return s


def check_table(data, schema, where, errors):
    for key in data:
        if key not in schema:
            known = ", ".join(sorted(schema))
            errors.append(f"{where}{key}: unknown key (known here: {known})")
    for key, spec in schema.items():
        path = where + key
        if key not in data:
            if key not in OPTIONAL:
                what = "a table" if isinstance(spec, dict) else spec[1]
                errors.append(f"{path}: missing (expected {what})")
            continue
        value = data[key]
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                errors.append(f"{path}: must be a table [{path}]")
            else:
                check_table(value, spec, path + ".", errors)
            continue
        typ, help_ = spec
        ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
        if typ is list and ok:
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            errors.append(f"{path}: must be {typ.__name__} ({help_}), got {value!r}")


def check(path):
    """Returns the list of problems of one config file (empty when it is fine)."""
    name = os.path.basename(path)[: -len(".toml")]
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        return [f"not valid TOML: {e}"]
    kind = data.get("kind")
    if kind not in KINDS:
        return [f"kind: must be one of {', '.join(KINDS)}, got {kind!r}"]
    errors = []
    check_table(data, schema_for(kind), "", errors)
    if errors:
        return errors
    if data["name"] != name:
        errors.append(f"name: {data['name']!r} must equal the file name {name!r}")
    if data["target"] not in TARGETS:
        errors.append(f"target: unknown {data['target']!r} (known: {', '.join(TARGETS)})")
    if kind in ("pi", "vm"):
        img = data["image"]
        total = img["total_mb"]
        if total & (total - 1):
            errors.append(f"image.total_mb: {total} is not a power of two (QEMU raspi machines need one)")
        used = 1 + img["boot_mb"] + 2 * img["root_mb"] + 16
        if used > total:
            errors.append(
                f"image: boot_mb + 2 * root_mb + 17 MiB (start gap, smallest data) = {used} > total_mb {total}"
            )
    return errors


def load(board):
    path = os.path.join(HERE, board + ".toml")
    if not os.path.exists(path):
        boards = sorted(f[:-5] for f in os.listdir(HERE) if f.endswith(".toml"))
        sys.exit(f"board-configs: no board '{board}' (known: {', '.join(boards)})")
    errors = check(path)
    if errors:
        for e in errors:
            print(f"{path}: {e}", file=sys.stderr)
        sys.exit(f"board-configs: {board}.toml is invalid (see above)")
    with open(path, "rb") as f:
        return tomllib.load(f)


def main(argv):
    if len(argv) >= 1 and argv[0] == "check":
        files = argv[1:] or sorted(
            os.path.join(HERE, f) for f in os.listdir(HERE) if f.endswith(".toml")
        )
        bad = 0
        for path in files:
            errors = check(path)
            for e in errors:
                print(f"{path}: {e}", file=sys.stderr)
            bad += bool(errors)
            if not errors:
                print(f"ok  {path}")
        if bad:
            print(f"board-configs: {bad} invalid config(s)", file=sys.stderr)
            return 1
        return 0
    if len(argv) == 3 and argv[0] == "get":
        value = load(argv[1])
        if argv[2] == "debian_arch":
            print(TARGETS[value["target"]])
            return 0
        for part in argv[2].split("."):
            if not isinstance(value, dict) or part not in value:
                sys.exit(f"board-configs: {argv[1]} has no key '{argv[2]}'")
            value = value[part]
        if isinstance(value, list):
            for v in value:
                print(v)
        elif isinstance(value, dict):
            sys.exit(f"board-configs: '{argv[2]}' is a table; ask for one of its keys")
        else:
            print(value)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:  # `board.py get ... | head`
        sys.exit(0)
