# Sourced by scripts/test.sh and scripts/sandbox.sh: the Debian packages each needs, installed
# when missing, so that a fresh Debian machine with a Rust toolchain needs nothing else.
#
# ensure_packages PACKAGE...  installs the missing ones with apt-get when run as root; otherwise
#                             prints one line with the exact command and returns 1.
# require_kubectl             kubectl is not in Debian's archive: says where to get it.
#
# Only bash builtins decide what is missing (`command -v`, `[`), so a PATH without a tool is
# all it takes to see the missing-package path (tests/tests/scripts.rs does).

# Whether PACKAGE is installed, judged by the program the project uses from it.
package_present() {
    case "$1" in
        apache2-utils) command -v htpasswd ;;
        openssh-client) command -v ssh-keygen ;;
        # sshd lives in /usr/sbin, which a user's PATH often lacks.
        openssh-server) command -v sshd || [ -x /usr/sbin/sshd ] ;;
        procps) command -v pgrep ;;
        # The headers openssl-sys (via git2) builds against.
        libssl-dev) [ -e /usr/include/openssl/ssl.h ] ;;
        *) command -v "$1" ;;
    esac >/dev/null 2>&1
}

ensure_packages() {
    local missing=() package
    for package in "$@"; do
        package_present "$package" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local install="apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$EUID" -ne 0 ]; then
        echo "error: missing system packages; install them with: sudo apt-get update && sudo $install" >&2
        return 1
    fi
    echo "installing missing system packages: ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $install -qq
}

require_kubectl() {
    command -v kubectl >/dev/null 2>&1 && return 0
    echo "error: kubectl (1.32 or newer) is required and is not in Debian's archive; install it from the Kubernetes apt repository: https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/" >&2
    return 1
}
