// The lab is Linux only (network namespaces); elsewhere the package is empty.

package netlab
