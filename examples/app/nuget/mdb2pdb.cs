// Rewrites a DLL that mcs built with -debug (Mono's .mdb symbols) with a portable PDB
// beside it, carrying the line tables across: Debian's mono ships mcs, which writes only
// .mdb, and no Roslyn csc. Uses the Mono.Cecil and Mono.CompilerServices.SymbolWriter
// assemblies mono itself ships. Usage: mono mdb2pdb.exe IN.dll OUT.dll (writes OUT.pdb,
// naming sources /_/FILE as a deterministic Roslyn build with -pathmap does).
using System.IO;
using Mono.Cecil;
using Mono.Cecil.Cil;
using Mono.CompilerServices.SymbolWriter;

static class Mdb2Pdb
{
    static int Main(string[] args)
    {
        var module = ModuleDefinition.ReadModule(args[0]);
        var mdb = MonoSymbolFile.ReadSymbolFile(args[0] + ".mdb", module.Mvid);
        foreach (var type in module.Types)
        {
            foreach (var method in type.Methods)
            {
                if (!method.HasBody) continue;
                var entry = mdb.GetMethodByToken(method.MetadataToken.ToInt32());
                if (entry == null) continue;
                foreach (var line in entry.GetLineNumberTable().LineNumbers)
                {
                    var source = mdb.Sources[line.File - 1];
                    var document = new Document("/_/" + Path.GetFileName(source.FileName)) { Language = DocumentLanguage.CSharp };
                    var at = method.Body.Instructions;
                    Instruction target = null;
                    foreach (var instruction in at)
                        if (instruction.Offset == line.Offset) target = instruction;
                    if (target == null || line.Row <= 0 || line.Row == 0xfeefee) continue;
                    var column = line.Column > 0 ? line.Column : 1;
                    method.DebugInformation.SequencePoints.Add(new SequencePoint(target, document)
                    {
                        StartLine = line.Row, StartColumn = column,
                        EndLine = line.EndRow > 0 ? line.EndRow : line.Row,
                        EndColumn = line.EndColumn > column ? line.EndColumn : column + 1,
                    });
                }
            }
        }
        module.Write(args[1], new WriterParameters { WriteSymbols = true, SymbolWriterProvider = new PortablePdbWriterProvider() });
        return 0;
    }
}
