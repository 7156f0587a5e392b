from alertd.cli import main

main()
