SetCompressor  bzip2
OutFile "bzip2.exe"
InstallDir "$TEMP\t"
Section
SetOutPath "$INSTDIR"
File "clam.exe"
File "readme.txt"
SectionEnd
