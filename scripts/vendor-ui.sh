#!/usr/bin/env bash
# Fetches the web view's vendored library (Cytoscape.js) at the version
# pinned in examples/observer/ui/vendor/cytoscape.lock from the npm registry,
# checks the tarball against npm's integrity hash, and writes (or, with
# --check, compares) examples/observer/ui/vendor/cytoscape.min.js and its
# licence. Needs npm, tar, sha256sum and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=examples/observer/ui/vendor/cytoscape.lock
dir=examples/observer/ui/vendor
check=false
[[ "${1:-}" == --check ]] && check=true
get() { sed -n "s/^$1 = \"\(.*\)\"$/\1/p" "$lock"; }
package=$(get package) version=$(get version) integrity=$(get integrity)
file=$(get file) sha256=$(get sha256)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package@$version" > /dev/null)
tarball="$work/$package-$version.tgz"
actual="sha512-$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")"
if [[ "$actual" != "$integrity" ]]; then
    echo "vendor-ui: $package $version: the tarball's integrity is $actual, the lock says $integrity" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$work" "$file" package/LICENSE
got=$(sha256sum "$work/$file" | cut -d' ' -f1)
if [[ "$got" != "$sha256" ]]; then
    echo "vendor-ui: $file of $package $version has sha256 $got, the lock says $sha256" >&2
    exit 1
fi
if $check; then
    cmp "$work/$file" "$dir/cytoscape.min.js"
    cmp "$work/package/LICENSE" "$dir/LICENSE.cytoscape"
    echo "vendor-ui: $dir matches $package $version from the npm registry"
else
    cp "$work/$file" "$dir/cytoscape.min.js"
    cp "$work/package/LICENSE" "$dir/LICENSE.cytoscape"
    echo "vendor-ui: wrote $package $version into $dir"
fi
