// The Next.js app of the framework tests: scripts/install-tools.d/next.sh
// copies this folder next to the pinned next in .tools/npm/next and builds
// it there once.
module.exports = {
  output: 'standalone',
};
