# echo: repeat $text $n times, transformed by $mode; append the uploaded $input if any.
# Every parameter arrives as an environment variable; quote them like any other data.
case "${mode:-as-is}" in
  upper) line=$(printf '%s' "$text" | tr '[:lower:]' '[:upper:]') ;;
  lower) line=$(printf '%s' "$text" | tr '[:upper:]' '[:lower:]') ;;
  *) line=$text ;;
esac
: > "$output"
for ((i = 0; i < n; i++)); do
  printf '%s\n' "$line" >> "$output"
done
if [ -n "${input:-}" ] && [ -f "$input" ]; then
  cat -- "$input" >> "$output"
fi
lines=$(wc -l < "$output")
printf '{"lines": %d, "n": %d, "scale": %s}\n' "$lines" "$n" "$scale" > "$summary"
echo "wrote $lines lines"
