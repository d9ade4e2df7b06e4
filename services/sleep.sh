# sleep: wait $seconds in a child process (the executor must stop the whole group on ABORT).
echo "started $(date -u +%FT%TZ)" > started.txt
sleep "$seconds" &
wait $!
echo "waited $seconds s" > "$waited"
