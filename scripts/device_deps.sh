#!/usr/bin/env bash
# Prepares, on a CPU machine with Debian's package registry, every library the GPU machine's
# build needs beyond LibTorch and the CUDA toolkit (that machine has no registry and none of
# them): downloads the Debian packages (apt-get download), extracts them (dpkg -x) into .device/
# (ignored by git) and keeps only headers, CMake package files and shared libraries.
# scripts/device_check.sh builds against it there.
#
#   scripts/device_deps.sh          # writes .device/root (about 35 MiB), .device/lib
#
# What is carried: the -dev packages (headers, CMake files, the .so links) of yaml-cpp, spdlog,
# fmt, nlohmann-json, CLI11, GoogleTest, SentencePiece, OpenCV core and imgproc, and libpng; and
# the packages that hold the shared-library closure of their libraries (ELF NEEDED, read with
# ldd on this machine), except the C and C++ runtimes and zlib, which every image has and which
# must not be shadowed by older copies.
#
# Not carried: OpenCV imgcodecs, whose closure (GDAL, GDCM, OpenEXR, poppler, HDF5, ...) is about
# 170 MiB unpacked. The GPU build sets CORL_WITH_IMGCODECS=OFF: images are PNG, read and written
# through libpng (src/data/render.cpp), and bench_world and two image-file tests are left out.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=${DEST:-.device}
ARCH_LIB=usr/lib/x86_64-linux-gnu
DEV_PACKAGES=(
  libyaml-cpp-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libgtest-dev
  libsentencepiece-dev libonig-dev libgloo-dev libopencv-core-dev libopencv-imgproc-dev libpng-dev
)
ROOT_LIBRARIES=(
  libyaml-cpp.so libspdlog.so libfmt.so libsentencepiece.so libsentencepiece_train.so libonig.so
  libopencv_core.so libopencv_imgproc.so libpng16.so
)
# Shared libraries every image has; an older copy on LD_LIBRARY_PATH would shadow the image's.
BASE_LIBRARIES='^(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux-x86-64|libz|linux-vdso)\.so'

missing=()
for package in "${DEV_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  echo "device_deps: installing ${missing[*]} here (their closure is read with ldd)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The shared-library closure of the root libraries, as sonames and the packages that own them.
declare -A owners=() sonames=()
for library in "${ROOT_LIBRARIES[@]}"; do
  path=$(readlink -f "/$ARCH_LIB/$library")
  [[ -f $path ]] || { echo "device_deps: /$ARCH_LIB/$library not found" >&2; exit 1; }
  owners[$(dpkg -S "$path" | cut -d: -f1)]=1
  while read -r soname target; do
    [[ $soname =~ $BASE_LIBRARIES ]] && continue
    [[ -n $target && -e $target ]] || { echo "device_deps: $soname of $library unresolved" >&2; exit 1; }
    sonames[$soname]=1
    owners[$(dpkg -S "$(readlink -f "$target")" | cut -d: -f1)]=1
  done < <(ldd "$path" | awk '/=>/ {print $1, $3}')
done
packages=("${DEV_PACKAGES[@]}" "${!owners[@]}")
echo "device_deps: ${#packages[@]} packages: ${packages[*]}"

util_remove() { [[ -e $1 || -L $1 ]] && rm -rf -- "$1"; return 0; }
util_remove "$DEST"
mkdir -p "$DEST/debs" "$DEST/root" "$DEST/lib"
(cd "$DEST/debs" && apt-get download -qq "${packages[@]}")
for deb in "$DEST"/debs/*.deb; do dpkg -x "$deb" "$DEST/root"; done

# Keep headers, CMake package files and libraries; documentation and programs are not needed.
util_remove "$DEST/root/usr/share/doc"
util_remove "$DEST/root/usr/share/man"
util_remove "$DEST/root/usr/share/lintian"
util_remove "$DEST/root/usr/share/bug"
util_remove "$DEST/root/usr/bin"
util_remove "$DEST/root/etc"
util_remove "$DEST/debs"
# Shared libraries only, but for GoogleTest, which Debian ships as static archives alone.
find "$DEST/root" -name '*.a' ! -name 'libgtest*.a' ! -name 'libgmock*.a' -delete

# One folder with every runtime soname as a relative link, for LD_LIBRARY_PATH and -rpath-link:
# Debian reaches BLAS and LAPACK through alternatives links that dpkg -x does not make.
for soname in "${!sonames[@]}" libyaml-cpp.so.0.7 libspdlog.so.1.10 libfmt.so.9 \
  libsentencepiece.so.0 libsentencepiece_train.so.0 libonig.so.5 libopencv_core.so.406 \
  libopencv_imgproc.so.406 libpng16.so.16; do
  found=$(cd "$DEST/root" && find . -name "$soname" \( -type f -o -type l \) | head -1)
  [[ -n $found ]] || { echo "device_deps: $soname is in no extracted package" >&2; exit 1; }
  ln -sf "../root/${found#./}" "$DEST/lib/$soname"
done
# Every link must resolve inside the folder.
broken=$(find -L "$DEST/lib" -type l)
[[ -z $broken ]] || { echo "device_deps: unresolved links: $broken" >&2; exit 1; }

size=$(du -sm "$DEST" | cut -f1)
echo "device_deps: $DEST holds ${size} MiB ($(find "$DEST/lib" -type l | wc -l) runtime libraries)"
if ((size > 48)); then
  echo "device_deps: over 48 MiB: the working tree and $DEST must travel within 64 MiB" >&2
  exit 1
fi
