"""The CUDA backend is a loadable module (engine/cuda_module.c): s1d and s1ctl
link no CUDA library, start without any, and `--backend cuda` fails with one
line naming what is missing (the module, a library, the driver or a GPU) and
how to fix it, exit status non-zero, no hang.

Argument: the path of fake_s1cuda.so, a module that needs a library no system
has (libcublasLt.so.99)."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from s1test import BUILD, SOURCE, binary, tap_main  # noqa: E402

FAKE_MODULE = sys.argv[1]
CUDA_LIBS = ("libcudart", "libcublas", "libnccl", "libcuda.")
WORK = tempfile.mkdtemp(prefix="s1-cuda-module-")
MODEL = os.path.join(WORK, "model")
PROBLEM = os.path.join(WORK, "problem.txt")


def setup():
    subprocess.run([sys.executable, os.path.join(SOURCE, "tools", "gen_model.py"), "--out", MODEL,
                    "--preset", "tiny"], check=True, capture_output=True)
    with open(PROBLEM, "w") as f:
        f.write("What is 2+2?\n")


def needed(path):
    """The DT_NEEDED entries of an ELF file."""
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True).stdout
    return [line.split("[")[1].split("]")[0] for line in out.splitlines() if "(NEEDED)" in line]


def generate_cuda(env_extra):
    """s1ctl generate --backend cuda on the tiny model; (exit status, the
    stderr lines about cuda: the error, which must be one line)."""
    env = dict(os.environ, **env_extra)
    p = subprocess.run([binary("s1ctl"), "generate", "--model", MODEL, "--backend", "cuda",
                        "--budget", "4", PROBLEM], env=env, capture_output=True, text=True,
                       timeout=60)
    return p.returncode, [line for line in p.stderr.splitlines() if "cuda:" in line]


def test_no_binary_links_a_cuda_library():
    for name in ("s1ctl", "s1d"):
        libs = needed(binary(name))
        cuda = [lib for lib in libs if lib.startswith(CUDA_LIBS)]
        assert not cuda, f"{name} needs {cuda}"


def test_s1ctl_starts_with_no_library_path():
    p = subprocess.run([binary("s1ctl"), "--help"], env={"PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "generate" in p.stdout


def test_a_missing_module_is_named_with_the_fix():
    rc, err = generate_cuda({"S1_CUDA_MODULE": os.path.join(WORK, "absent", "s1cuda.so")})
    assert rc != 0
    assert len(err) == 1, err
    assert "S1_CUDA_MODULE" in err[0] and "no such file" in err[0], err


def test_a_missing_cuda_library_is_named_with_how_to_install_it():
    module = os.path.join(WORK, "s1cuda.so")
    shutil.copy(FAKE_MODULE, module)
    # meson test points LD_LIBRARY_PATH at the build tree, where the library is
    rc, err = generate_cuda({"S1_CUDA_MODULE": module, "LD_LIBRARY_PATH": ""})
    assert rc != 0
    assert len(err) == 1, err
    assert "cuBLASLt" in err[0] and "libcublasLt.so.99" in err[0], err
    assert "LD_LIBRARY_PATH" in err[0], err


def test_backend_cuda_on_this_machine_says_what_is_missing():
    built = os.path.isfile(os.path.join(BUILD, "kernels", "s1cuda.so"))
    rc, err = generate_cuda({})
    if not built:
        assert rc != 0 and len(err) == 1 and "has no CUDA backend" in err[0], err
        return
    if rc == 0:
        return  # a machine with a GPU runs it
    assert len(err) == 1, err
    assert any(s in err[0] for s in ("no CUDA device found", "is missing")), err


if __name__ == "__main__":
    atexit.register(shutil.rmtree, WORK, True)
    setup()
    tap_main(globals())
