#!/bin/sh
# go-aleph's check program: busybox httpd serving this directory's www.
exec httpd -f -p 8080 -h /opt/code/www
