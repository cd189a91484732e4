#!/bin/sh
# Runs node with the arguments given. The NVIDIA container toolkit normally mounts the driver's
# Vulkan ICD manifest where the Vulkan loader looks (/etc/vulkan/icd.d, /usr/share/vulkan/icd.d).
# When it is not there and VK_DRIVER_FILES names none, the loader is pointed at the one some
# installs keep under /usr/local/nvidia, else at the manifest shipped in the image, which names
# the driver library the toolkit mounts (libGLX_nvidia.so.0).
set -eu
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "${VK_ICD_FILENAMES:-}" ] \
  && ! ls /etc/vulkan/icd.d/nvidia_icd*.json /usr/share/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  VK_DRIVER_FILES=/opt/nexusml/deploy/nvidia/nvidia_icd.json
  for manifest in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd*.json; do
    if [ -e "$manifest" ]; then VK_DRIVER_FILES="$manifest"; break; fi
  done
  export VK_DRIVER_FILES
fi
exec node "$@"
