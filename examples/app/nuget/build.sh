#!/bin/sh
# How lib/netstandard2.0/Example.App.{dll,pdb} were built (once; they are committed). mcs writes only Mono's .mdb symbols, so mdb2pdb.cs (Mono.Cecil) rewrites the DLL with a portable PDB.
set -eu; cd "$(dirname "$0")"; t=$(mktemp -d); trap 'rm -rf "$t"' EXIT; cecil=/usr/lib/mono/gac/Mono.Cecil/0.11.0.0__0738eb9f132ed756/Mono.Cecil.dll
mcs -nologo -out:"$t/mdb2pdb.exe" -r:"$cecil" -r:Mono.CompilerServices.SymbolWriter mdb2pdb.cs && mcs -nologo -target:library -debug -deterministic -out:"$t/Example.App.dll" Example.App.cs && mono "$t/mdb2pdb.exe" "$t/Example.App.dll" lib/netstandard2.0/Example.App.dll
