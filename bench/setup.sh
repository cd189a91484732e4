# Set-up the benches need beyond deploy/bootstrap.sh (source it first): valgrind, for the
# instruction counts of the cpu suite and the CI gate (callgrind, callgrind_annotate,
# callgrind_control). Sourced by .ci/run and bench/gpu.sh; like bootstrap.sh, each step
# checks before it acts.

# callgrind_annotate and callgrind_control are Perl scripts (callgrind_annotate --version exits
# 255, so the check runs Perl itself).
has_callgrind() {
  command -v valgrind >/dev/null && command -v callgrind_control >/dev/null && command -v callgrind_annotate >/dev/null \
    && perl -MFile::Basename -e 1 2>/dev/null
}

ensure_valgrind() {
  if has_callgrind; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    nexus_log "valgrind is missing (instruction counts of the performance gate). As root run: apt-get install -y valgrind"
    return 1
  fi
  nexus_log "installing valgrind"
  apt_install valgrind || return 1
  # perl-base is on every Debian; a slimmer image may lack it.
  has_callgrind || apt_install perl-base || return 1
  has_callgrind
}
