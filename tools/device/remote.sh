# Sourced on the GPU machine from the repository root (`source .deno/remote.sh && …`, after
# tools/device/prepare.sh packed `.deno/` and `.gl/`): installs the Vulkan/EGL loader
# packages (needs root), unpacks Deno to /tmp and puts it on PATH, points Vulkan and EGL at the
# NVIDIA driver, and prints the GPU it sees. Override the driver manifests with VK_DRIVER_FILES and
# __EGL_VENDOR_LIBRARY_FILENAMES where the driver keeps them elsewhere.
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.deno/deno.xz'), open('/tmp/deno','wb'))" && chmod +x /tmp/deno
mkdir -p /tmp/denobin && ln -sf /tmp/deno /tmp/denobin/deno && export PATH=/tmp/denobin:$PATH
if [ -z "${VK_DRIVER_FILES:-}" ]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
    /etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; break; fi
  done
fi
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ]; then
  for egl in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json \
    /usr/share/glvnd/egl_vendor.d/10_nvidia.json; do
    if [ -f "$egl" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl; break; fi
  done
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
