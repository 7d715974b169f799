from autostudent.cli import main

main()
