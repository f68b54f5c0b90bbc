/* test_controller - what of the controller can be tested without HAProxy:
 * `render` mode (list etcd once, render the services file, stop), against
 * a canned etcd gateway in a child process on a free 127.0.0.1 port, and
 * its deadline when etcd does not answer. The logic the controller drives
 * has its own suites (apply, backend, table, hup, feed, plan, runtime,
 * catalog, slots, status, config). */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <slotsync/config.h>
#include <slotsync/controller.h>
#include <slotsync/etcd_decode.h>
#include <slotsync/file.h>

static pid_t fake_pid = -1;
static char dir[64];

static int listen_any(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fd, 16), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static char *b64(const char *s)
{
    char *out = NULL;

    if (etcd_b64_encode(s, strlen(s), &out, NULL) < 0)
        _exit(3);
    return out;
}

/* One request, read whole (headers and Content-Length body); its path is
 * copied into path. */
static bool read_request(int fd, char *path, size_t size)
{
    char buf[16384];
    size_t n = 0;
    char *end = NULL, *cl;
    long body = 0;

    while (!end || n < (size_t)(end + 4 - buf) + (size_t)body) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);

        if (r <= 0)
            return false;
        n += (size_t)r;
        buf[n] = '\0';
        if (!end && (end = strstr(buf, "\r\n\r\n"))) {
            cl = strstr(buf, "Content-Length:");
            body = cl ? strtol(cl + 15, NULL, 10) : 0;
        }
    }
    return sscanf(buf, "%*s %255s", path) == 1 && size > 255;
}

/* A canned gateway (the config asks for etcd.transport json): every range
 * is the listing of two endpoints of service web at revision 5; a watch is
 * told "created" and closed. Each answer closes its connection. */
static void fake_serve(int lfd)
{
    char *ka = b64("/svc/web/a"), *va = b64("127.0.0.1:8080");
    char *kb = b64("/svc/web/b"), *vb = b64("{\"host\":\"127.0.0.2\",\"port\":8081,\"weight\":5}");
    char range[1024], reply[2048], path[256];

    snprintf(range, sizeof(range),
             "{\"header\":{\"cluster_id\":\"7\",\"revision\":\"5\"},\"kvs\":["
             "{\"key\":\"%s\",\"value\":\"%s\",\"mod_revision\":\"3\"},"
             "{\"key\":\"%s\",\"value\":\"%s\",\"mod_revision\":\"4\"}],\"count\":\"2\"}",
             ka, va, kb, vb);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        const char *body = range;

        if (fd < 0)
            continue;
        if (read_request(fd, path, sizeof(path))) {
            if (strstr(path, "/v3/watch"))
                body = "{\"result\":{\"header\":{\"cluster_id\":\"7\",\"revision\":\"5\"},"
                       "\"created\":true}}\n";
            snprintf(reply, sizeof(reply),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     strlen(body), body);
            if (write(fd, reply, strlen(reply)) < 0) {
                /* the client went away: next connection */
            }
        }
        close(fd);
    }
}

static int fake_start(void)
{
    int port, lfd = listen_any(&port);

    fake_pid = fork();
    cr_assert_geq(fake_pid, 0);
    if (fake_pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        fake_serve(lfd);
        _exit(0);
    }
    close(lfd);
    return port;
}

static void fini(void)
{
    char path[128];

    if (fake_pid > 0) {
        kill(fake_pid, SIGKILL);
        waitpid(fake_pid, NULL, 0);
        fake_pid = -1;
    }
    if (dir[0]) {
        snprintf(path, sizeof(path), "%s/services.cfg", dir);
        unlink(path);
        rmdir(dir);
        dir[0] = '\0';
    }
}

TestSuite(controller, .fini = fini);

static void load_config(struct config *cfg, int etcd_port)
{
    char json[1024], *err = NULL;

    snprintf(dir, sizeof(dir), "/tmp/slotsync-ctl-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(json, sizeof(json),
             "{\"etcd\":{\"endpoints\":[\"http://127.0.0.1:%d\"],\"prefix\":\"/svc/\","
             "\"transport\":\"json\"},"
             "\"haproxy\":{\"runtime_socket\":\"%s/admin.sock\","
             "\"services_file\":\"%s/services.cfg\"},"
             "\"defaults\":{\"slots\":2,\"server_options\":\"check\"},"
             "\"log_level\":\"warn\"}",
             etcd_port, dir, dir);
    cr_assert_eq(config_load_string(json, cfg, &err), 0, "%s", err ? err : "");
}

Test(controller, render_lists_etcd_once_and_writes_the_services_file, .timeout = 30)
{
    struct config cfg;
    char *err = NULL, *text = NULL, path[128];
    size_t len = 0;
    int r;

    load_config(&cfg, fake_start());
    r = controller_render(&cfg, NULL, 10.0, &err);
    cr_assert_eq(r, 0, "%d: %s", r, err ? err : "");
    snprintf(path, sizeof(path), "%s/services.cfg", dir);
    cr_assert_eq(file_read(path, 1 << 20, &text, &len), 0);
    cr_expect(strncmp(text, "# Rendered by slotsync.", 23) == 0, "%s", text);
    cr_expect_not_null(strstr(text, "backend web\n"), "%s", text);
    cr_expect_not_null(strstr(text, "    default-server check\n"), "%s", text);
    cr_expect_not_null(strstr(text, "    server s1 127.0.0.1:8080 weight 1\n"), "%s", text);
    cr_expect_not_null(strstr(text, "    server s2 127.0.0.2:8081 weight 5\n"), "%s", text);
    free(text);
    free(err);
    config_free(&cfg);
}

Test(controller, render_gives_up_at_its_deadline_when_etcd_is_silent, .timeout = 30)
{
    struct config cfg;
    char *err = NULL, path[128];
    int port, lfd = listen_any(&port); /* accepts, never answers */
    int r;

    load_config(&cfg, port);
    r = controller_render(&cfg, NULL, 0.5, &err);
    cr_expect_eq(r, -ETIMEDOUT, "%d: %s", r, err ? err : "");
    cr_expect_not_null(err);
    snprintf(path, sizeof(path), "%s/services.cfg", dir);
    cr_expect_neq(access(path, F_OK), 0, "nothing rendered");
    close(lfd);
    free(err);
    config_free(&cfg);
}
